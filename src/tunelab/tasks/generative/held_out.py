"""Named held-out question sets of an sft run (eval.test_sets), each scored on its own, and what
the scope guard changes: the answers with the guard in front, and the guard's decisions alone."""

import json
from dataclasses import dataclass
from pathlib import Path

from tunelab.data.conversations import Example, read_examples
from tunelab.tasks.generative.evaluate import answer_scores

GUARD_ALONE_KEYS = ("refusal_rate", "false_refusal_rate", "n_off_topic", "n_in_domain")


@dataclass
class HeldOutSet:
    examples: list[Example]
    sources: list[str | None]  # each row's "source" field (where its question came from)


def row_sources(path: Path) -> list[str | None]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [json.loads(line).get("source") for line in lines]


def read_held_out(paths: dict[str, str]) -> dict[str, HeldOutSet]:
    sets = {}
    for name, path in paths.items():
        examples = read_examples(path)
        sources = row_sources(Path(path)) if str(path).endswith(".jsonl") else []
        sets[name] = HeldOutSet(examples, sources or [None] * len(examples))
    return sets


def guard_effect(
    examples: list[Example],
    answers: list[str],
    flags: list[bool],
    refusal: str,
    known_facts: set[str],
) -> dict:
    """Scores with the guard in front (flagged questions get the refusal, the rest keep the LM's
    answer) and of the guard alone (its refusals, nothing generated)."""
    guarded = [refusal if flag else answer for flag, answer in zip(flags, answers, strict=True)]
    alone = [refusal if flag else "" for flag in flags]
    decisions = answer_scores(examples, alone, refusal)
    return {
        "with_guard": answer_scores(examples, guarded, refusal, known_facts),
        "guard_alone": {k: decisions[k] for k in GUARD_ALONE_KEYS},
    }


def training_facts(examples: list[Example]) -> set[str]:
    return {fact for example in examples for fact in example.facts}
