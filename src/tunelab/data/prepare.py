"""Turn rows into train/val/test splits: balance, stratified split, label ids, length policy."""

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from tunelab.config import DataConfig
from tunelab.data.readers import Row, read_rows
from tunelab.errors import DataError, TunelabError


@dataclass
class Splits:
    train: list[Row]
    val: list[Row]
    test: list[Row]
    labels: list[str]
    notes: dict = field(default_factory=dict)  # what preparation removed, for data_summary.json

    def items(self):
        return [("train", self.train), ("val", self.val), ("test", self.test)]


def undersample(rows: list[Row], seed: int) -> list[Row]:
    """Cut every class to the size of the smallest (the seed's 747 ham + 747 spam)."""
    by_label = defaultdict(list)
    for row in rows:
        by_label[row.label].append(row)
    smallest = min(len(group) for group in by_label.values())
    rng = random.Random(seed)
    kept = [row for label in sorted(by_label) for row in rng.sample(by_label[label], smallest)]
    return sorted(kept, key=lambda row: row.row)


def stratified_split(rows: list[Row], fractions: tuple[float, ...], seed: int) -> list[list[Row]]:
    """Split each class by the same fractions, so every split keeps the label balance."""
    by_label = defaultdict(list)
    for row in rows:
        by_label[row.label].append(row)
    parts: list[list[Row]] = [[] for _ in fractions]
    rng = random.Random(seed)
    for label in sorted(by_label):
        group = by_label[label][:]
        rng.shuffle(group)
        cuts = [round(len(group) * sum(fractions[: i + 1])) for i in range(len(fractions))]
        for i, (start, end) in enumerate(zip([0, *cuts[:-1]], cuts, strict=True)):
            parts[i].extend(group[start:end])
    for part in parts:
        rng.shuffle(part)
    return parts


def check_known_labels(rows: list[Row], labels: list[str]) -> None:
    known = set(labels)
    for row in rows:
        if row.label not in known:
            raise DataError(
                row.file,
                f"label '{row.label}' does not occur in the training data "
                f"(known: {', '.join(labels)})",
                row=row.row,
                field="label",
            )


def three_splits(rows: list, val: list | None, test: list | None, fractions, split, seed: int):
    """Train/val/test: given files win; what is missing is carved from `rows` by `split`
    (stratified for classification, plain for the generative tasks)."""
    train_f, val_f, test_f = fractions
    if test is None and val is None:
        return split(rows, (train_f, val_f, test_f), seed)
    if test is None or val is None:
        share = val_f if val is None else test_f
        train, carved = split(rows, (1 - share, share), seed)
        return (train, carved, test) if val is None else (train, val, carved)
    return rows, val, test


def read_split_file(path: str, config: DataConfig) -> list[Row]:
    return read_rows(path, config.format, config.columns, config.text_field, config.label_field)


def prepare_splits(config: DataConfig, seed: int, read_test: bool = True) -> Splits:
    """Read the data and produce the three splits the run trains, selects and tests on.
    read_test=False (a search trial, scored on validation): the test file is never opened, and
    test rows carved from `path` are dropped unread, so train and val are the final run's."""
    rows = read_split_file(config.path, config)
    notes = {"source_rows": len(rows), "source_labels": dict(Counter(r.label for r in rows))}
    if config.balance == "undersample":
        before = len(rows)
        rows = undersample(rows, seed)
        notes["removed_by_balancing"] = before - len(rows)
    test = None
    if config.test_path:  # unread, it stands as given (empty): train and val come out the same
        test = read_split_file(config.test_path, config) if read_test else []
    val = read_split_file(config.val_path, config) if config.val_path else None
    train, val, test = three_splits(rows, val, test, config.split, stratified_split, seed)
    if not read_test:
        test = []
    if config.limit_train:
        train = train[: config.limit_train]
    named = (("train", train), ("val", val), ("test", test))
    for name, part in named if read_test else named[:2]:
        if not part:
            raise TunelabError(
                f"{config.path}: the {name} split is empty ({len(rows)} rows, data.split="
                f"{list(config.split)}); add rows"
                + (f", give data.{name}_path" if name != "train" else "")
                + " or change data.split"
            )
    labels = sorted({row.label for row in train})
    if len(labels) < 2:
        raise TunelabError(f"{config.path}: the training split has fewer than 2 labels ({labels})")
    check_known_labels(val + test, labels)
    return Splits(train, val, test, labels, notes)
