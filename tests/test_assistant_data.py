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


TRAIN = ("domain_train.jsonl", "offtopic_train.jsonl")
TEST = ("test.jsonl", "test_casual.jsonl", "test_offtopic_ood.jsonl")
DEV = ("dev.jsonl", "dev_casual.jsonl", "dev_offtopic_ood.jsonl")


def questions(*names: str) -> set[str]:
    return {key(r["question"]) for name in names for r in rows(name)}


def test_no_held_out_question_is_a_training_question():
    trained = questions(*TRAIN)
    for name in TEST + DEV:
        assert not questions(name) & trained, name


def test_the_development_set_shares_no_question_and_no_unseen_source_with_the_test_sets():
    assert not questions(*DEV) & questions(*TEST)
    dev_sources = {r["source"] for r in rows("dev_offtopic_ood.jsonl")}
    assert dev_sources == {"truthfulqa", "arc-easy"}
    seen = {r["source"] for name in ("offtopic_train.jsonl", "test_offtopic_ood.jsonl")
            for r in rows(name)}  # fmt: skip
    assert not dev_sources & seen
    in_domain = [r for r in rows("dev.jsonl") if r.get("facts")]
    assert len(in_domain) == 50 and len(rows("dev_casual.jsonl")) == 50
    assert {r["facts"][0] for r in in_domain} == {r["facts"][0] for r in rows("test_casual.jsonl")}


def test_in_domain_questions_come_in_two_styles():
    styles = {r["style"] for r in rows("domain_train.jsonl")}
    assert styles == {"formal", "casual"}
    assert all(r["style"] == "casual" and r["facts"] for r in rows("test_casual.jsonl"))


def files_named(config) -> set[str]:
    """Every data file a run config points at."""
    data, evaluation = config.data, config.eval
    paths = [data.path, data.test_path, data.val_path, evaluation.general]
    paths += [part.path for part in data.mix or []] + list(evaluation.test_sets.values())
    return {Path(p).name for p in paths if p}


def test_choosing_on_the_development_set_reads_no_test_file(monkeypatch):
    """configs/compare_assistant_dev.yaml chooses the remedies and the guard's threshold: none of
    its runs may name a test set (data.test_path, eval.test_sets, the mix, the general set)."""
    import tunelab.pipeline  # noqa: F401  (registers the tasks and methods)
    from tunelab.compare import load_experiment, plan

    path = ROOT / "configs" / "compare_assistant_dev.yaml"
    monkeypatch.chdir(ROOT)
    experiment = load_experiment(path)
    plans = plan(path, experiment, experiment.budget.overrides())
    assert len(plans) >= 2
    for item in plans:
        named = files_named(item.config)
        assert not named & set(TEST), item.variant.name
        assert set(DEV) <= named, item.variant.name
