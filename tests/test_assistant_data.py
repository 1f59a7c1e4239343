"""The seed-003 assistant data (data/assistant/, built by scripts/make_assistant_data.py): seeded,
several sources and styles, and the held-out sets disjoint from training."""

import json
import random
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "assistant"
sys.path.insert(0, str(ROOT / "scripts"))

from assistant_sources import casual, near_domain  # noqa: E402
from make_assistant_data import domain_rows  # noqa: E402


def rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line]


def key(question: str) -> str:
    return " ".join(question.lower().split())


def test_building_is_seeded():
    facts = yaml.safe_load((DATA / "facts.yaml").read_text())
    assert domain_rows(facts, random.Random(0)) == domain_rows(facts, random.Random(0))
    assert near_domain(random.Random(3)) == near_domain(random.Random(3))
    assert casual("When was Larkspur Ferries founded?", random.Random(1)) == casual(
        "When was Larkspur Ferries founded?", random.Random(1)
    )
    train = rows("domain_train.jsonl")
    assert train == [*domain_rows(facts, random.Random(0))[0]]


def test_off_topic_training_rows_come_from_four_sources_and_the_ood_set_from_others():
    train_sources = {r["source"] for r in rows("offtopic_train.jsonl")}
    ood_sources = {r["source"] for r in rows("test_offtopic_ood.jsonl")}
    assert train_sources == {"instructions", "hh-rlhf", "casual", "near-domain"}
    assert ood_sources and not ood_sources & train_sources


def test_no_held_out_question_is_a_training_question():
    trained = {key(r["question"]) for name in ("domain_train.jsonl", "offtopic_train.jsonl")
               for r in rows(name)}  # fmt: skip
    for name in ("test.jsonl", "test_casual.jsonl", "test_offtopic_ood.jsonl"):
        assert not {key(r["question"]) for r in rows(name)} & trained, name


def test_in_domain_questions_come_in_two_styles():
    styles = {r["style"] for r in rows("domain_train.jsonl")}
    assert styles == {"formal", "casual"}
    assert all(r["style"] == "casual" and r["facts"] for r in rows("test_casual.jsonl"))
