"""Checks of the rows themselves: leakage between train and test, label balance, length."""

import re

from tunelab.doctor.findings import Finding

WORD = re.compile(r"\w+")
NEAR = 0.8  # word-trigram Jaccard similarity from which two texts count as near duplicates


def shingles(text: str) -> frozenset:
    words = WORD.findall(text.casefold())
    return frozenset(zip(words, words[1:], words[2:], strict=False)) or frozenset([tuple(words)])


def near_duplicates(train: list[str], test: list[str]) -> tuple[int, int]:
    """(test rows equal to a training row once case, spacing and punctuation are ignored,
    further test rows whose word trigrams overlap a training row's by NEAR or more)."""
    normal = {" ".join(WORD.findall(t.casefold())) for t in train}
    train_sets = [shingles(t) for t in train]
    index: dict[tuple, list[int]] = {}
    for i, grams in enumerate(train_sets):
        for gram in grams:
            index.setdefault(gram, []).append(i)
    exact = near = 0
    for text in test:
        if " ".join(WORD.findall(text.casefold())) in normal:
            exact += 1
            continue
        grams, shared = shingles(text), {}
        for gram in grams:
            for i in index.get(gram, ()):
                shared[i] = shared.get(i, 0) + 1
        if any(n / len(grams | train_sets[i]) >= NEAR for i, n in shared.items()):
            near += 1
    return exact, near


def leakage(task, summary: dict) -> list[Finding]:
    """Test and validation rows that repeat training rows: a test score that overstates the
    model, or a validation curve that picks the epoch (and a search its settings) on memory."""
    texts = task.split_texts()
    if not texts.get("train"):
        return []
    return [
        split_leakage(texts["train"], texts[split], split, name)
        for split, name in (("test", "leakage"), ("val", "validation leakage"))
        if texts.get(split)
    ]


def split_leakage(train: list[str], held: list[str], split: str, name: str) -> Finding:
    exact, near = near_duplicates(train, held)
    rows = len(held)
    if exact + near == 0:
        return Finding(name, "ok", f"no {split} row repeats a training row ({rows} checked)")
    share = (exact + near) / rows
    harm = {
        "test": "the test score overstates the model",
        "val": "early stopping and the search choose on rows the model trained on",
    }[split]
    return Finding(
        name,
        "fatal" if share >= 0.5 else "warn",
        f"{exact} {split} rows equal a training row and {near} more nearly do "
        f"({share:.0%} of {rows}): {harm}",
    )


def label_balance(task, summary: dict) -> list[Finding]:
    counts = summary.get("splits", {}).get("train", {}).get("labels")
    if not counts:
        return []
    total = sum(counts.values())
    label, most = max(counts.items(), key=lambda item: item[1])
    share = most / total
    spread = ", ".join(f"{k} {v}" for k, v in counts.items())
    if share < 0.8:
        return [Finding("label imbalance", "ok", f"training labels: {spread}")]
    message = (
        f"'{label}' is {share:.0%} of the training rows ({spread}): accuracy rewards always "
        "saying it; set data.balance: undersample or watch macro F1"
    )
    return [Finding("label imbalance", "warn", message)]


def overlong(task, summary: dict) -> list[Finding]:
    splits = summary.get("splits", {})
    cut = sum(
        s.get("truncated_overlong", 0) + s.get("dropped_overlong", 0) for s in splits.values()
    )
    rows = sum(s.get("rows", 0) for s in splits.values())
    if not rows:
        return []
    share = cut / rows
    max_length = summary.get("max_length")
    severity = "warn" if share >= 0.1 else "ok"
    return [
        Finding(
            "over max_length",
            severity,
            f"{share:.1%} of the rows ({cut} of {rows}) exceed data.max_length={max_length} "
            f"and were {'dropped' if summary.get('overlong') == 'drop' else 'truncated'}",
        )
    ]


DATA_CHECKS = (leakage, label_balance, overlong)
