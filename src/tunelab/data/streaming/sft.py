"""data.streaming for sft: instruction sets bigger than memory, through Arrow files.

A JSONL file's rows are read and checked one at a time (a bad row is the one-line error the
in-memory reader gives) and written to an Arrow file. The split is the in-memory path's: the
same seeded shuffle over row indices (three_splits, limit_train, then mix_in's shuffle). The
train split is encoded by `datasets.map` in data.num_proc processes, in rounds
(files.mapped_rounds), with the same template, labels and max_length policy, and its kept
rows are written to one Arrow file that training reads memory-mapped. The val and test splits
are held in memory: evaluation reads them whole (keep them small). Cached under a key of the
files, tokenizer, template and settings, like pretrain's blocks.

Not streamed, each a one-line error: data.mix, task.packing, and files other than JSONL."""

import json
import os
import random
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from datasets import Dataset, Features, Value
from datasets import List as ArrowList
from datasets.arrow_writer import ArrowWriter
from datasets.fingerprint import Hasher
from transformers import PreTrainedTokenizerBase

from tunelab.config import DataConfig
from tunelab.data.conversations import Example, example_of, read_examples
from tunelab.data.lm_encode import IGNORE
from tunelab.data.lm_prepare import (
    LmData,
    SftFormat,
    empty_after_length_policy,
    encode_examples,
    split_by_fractions,
    split_summary,
)
from tunelab.data.prepare import three_splits
from tunelab.data.readers import jsonl_records
from tunelab.data.streaming.files import (
    SUMMARY,
    WRITE_BATCH,
    ArrowRows,
    cached_build,
    mapped_rounds,
    rows_per_round,
)
from tunelab.data.templates import resolve_template
from tunelab.errors import DataError, TunelabError

RECORDS = "records.arrow"  # every row of data.path, checked
TRAIN = "train.arrow"  # the encoded train rows that the length policy kept, in training order
RECORD_FEATURES = Features(
    {
        "messages": Value("string"),  # JSON: a list of {role, content}
        "row": Value("int64"),
        "facts": ArrowList(Value("string")),
        "source": Value("string"),
    }
)
TOKEN_FEATURES = Features(
    {"input_ids": ArrowList(Value("int32")), "labels": ArrowList(Value("int32"))}
)


def check_streamable(data: DataConfig, form: SftFormat) -> Path:
    path = Path(data.path).expanduser()
    for given in (data.path, data.val_path, data.test_path):
        if given and not Path(given).expanduser().is_file():
            raise TunelabError(f"data file not found: {Path(given).expanduser()}")
    if data.mix:
        raise TunelabError("data.mix: mixing is not streamed; set data.streaming=false")
    if form.packing:
        raise TunelabError("task.packing: packed rows are not streamed; set data.streaming=false")
    if data.format not in ("auto", "jsonl") or path.suffix.lower() != ".jsonl":
        raise TunelabError(
            f"{data.path}: streamed sft data is read from .jsonl (one record per line); "
            "convert the file or set data.streaming=false"
        )
    return path


def columns(rows: list[tuple]) -> dict[str, list]:
    """Rows of (messages, row, facts, source) as the record file's columns."""
    return {name: [row[i] for row in rows] for i, name in enumerate(RECORD_FEATURES)}


def write_records(path: Path, out: Path) -> tuple[int, int]:
    """Every row into one Arrow file, checked as it is read; returns rows and bytes of text."""
    count, size, batch = 0, 0, []
    with ArrowWriter(
        path=str(out), features=RECORD_FEATURES, writer_batch_size=WRITE_BATCH
    ) as writer:
        with path.open(encoding="utf-8") as lines:
            for row, record in jsonl_records(path, lines):
                example = example_of(record, path, row)
                if example.tools:  # the record file has no column for them: refused, not lost
                    raise DataError(
                        path,
                        "rows with tools are not streamed yet; set data.streaming=false",
                        row=row,
                        field="tools",
                    )
                messages = json.dumps(example.messages)
                batch.append((messages, row, example.facts, example.source))
                count, size = count + 1, size + len(messages)
                if len(batch) == WRITE_BATCH:
                    writer.write_batch(columns(batch))
                    batch = []
        if batch:
            writer.write_batch(columns(batch))
        writer.finalize()
    if not count:
        raise DataError(path, "no data rows")
    return count, size


def example_at(records: Dataset, index: int, file: str) -> Example:
    stored = records[int(index)]
    messages = json.loads(stored["messages"])
    return Example(messages, stored["row"], file, stored["facts"], stored["source"])


class RecordExamples(Sequence):
    """Rows of the records file, in a split's order, as Examples read when indexed."""

    def __init__(self, records: Path, order: np.ndarray, file: str):
        self.records, self.order, self.file = Dataset.from_file(str(records)), order, file

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return example_at(self.records, self.order[index], self.file)


def encoder(
    tokenizer: PreTrainedTokenizerBase, form: SftFormat, template: str, data: DataConfig
) -> Callable[[dict], dict]:
    """A batched map: each row encoded as prepare_sft encodes it; a dropped row has no ids."""

    def encode(batch: dict) -> dict:
        out = {"input_ids": [], "labels": [], "truncated": []}
        for messages in batch["messages"]:
            example = Example(json.loads(messages), 0, "")
            result = encode_examples([example], tokenizer, form, template, data)
            kept = result.examples[0] if result.examples else {"input_ids": [], "labels": []}
            out["input_ids"].append(kept["input_ids"])
            out["labels"].append(kept["labels"])
            out["truncated"].append(bool(result.truncated))
        return out

    return encode


def write_train(rounds, out: Path, rows: int) -> dict:
    """The kept rows of the mapped rounds into `out`; their split summary (split_summary's)."""
    counts = {"rows": rows, "encoded_rows": 0, "tokens": 0, "trained_tokens": 0}
    counts.update(truncated_overlong=0, dropped_overlong=0)
    with ArrowWriter(
        path=str(out), features=TOKEN_FEATURES, writer_batch_size=WRITE_BATCH
    ) as writer:
        for encoded in rounds:
            for batch in encoded.iter(batch_size=WRITE_BATCH):
                kept = [i for i, ids in enumerate(batch["input_ids"]) if ids]
                counts["dropped_overlong"] += len(batch["input_ids"]) - len(kept)
                counts["truncated_overlong"] += sum(batch["truncated"])
                ids, labels = ([batch[k][i] for i in kept] for k in ("input_ids", "labels"))
                counts["encoded_rows"] += len(kept)
                counts["tokens"] += sum(map(len, ids))
                counts["trained_tokens"] += sum(sum(t != IGNORE for t in row) for row in labels)
                if kept:
                    writer.write_batch({"input_ids": ids, "labels": labels})
        writer.finalize()
    return counts


def split_indices(data: DataConfig, count: int, seed: int) -> dict[str, list]:
    """split_files' and mix_in's order, over row indices: given val/test files stay Examples."""
    given = {
        name: read_examples(path, data.format)
        for name, path in (("val", data.val_path), ("test", data.test_path))
        if path
    }
    rows = list(range(count))
    train, val, test = three_splits(
        rows, given.get("val"), given.get("test"), data.split, split_by_fractions, seed
    )
    train = train[: data.limit_train] if data.limit_train else train
    for name, part in (("train", train), ("val", val), ("test", test)):
        if not part:
            raise TunelabError(f"{data.path}: the {name} split is empty; change data.split")
    random.Random(seed).shuffle(train)  # mix_in shuffles the train rows even with no data.mix
    return {"train": train, "val": val, "test": test}


def build_sft(
    data: DataConfig,
    form: SftFormat,
    tokenizer: PreTrainedTokenizerBase,
    template: str,
    seed: int,
    folder: Path,
) -> None:
    path = Path(data.path).expanduser()  # checked by prepare_sft_arrow
    work = folder / "work"  # the rounds' files, deleted once the train rows exist
    work.mkdir(parents=True)
    count, text_size = write_records(path, folder / RECORDS)
    splits = split_indices(data, count, seed)
    for name, part in splits.items():
        if part and isinstance(part[0], int):  # carved from data.path (a given file is re-read)
            np.save(folder / f"{name}_rows.npy", np.array(part, dtype=np.int64))
    encode = encoder(tokenizer, form, template, data)
    num_proc = data.num_proc or os.cpu_count() or 1
    per_round = rows_per_round(count, text_size)
    rounds = mapped_rounds(folder / RECORDS, splits["train"], per_round, encode, num_proc, work)
    train = write_train(rounds, folder / TRAIN, len(splits["train"]))
    if not train["encoded_rows"]:
        raise empty_after_length_policy("train", data)
    shutil.rmtree(work)
    (folder / SUMMARY).write_text(json.dumps({"train": train}))


def cache_key(
    data: DataConfig, form: SftFormat, tokenizer: PreTrainedTokenizerBase, template: str, seed: int
) -> str:
    paths = [p for p in (data.path, data.val_path, data.test_path) if p]
    stats = [(Path(p).expanduser().resolve(), Path(p).expanduser().stat()) for p in paths]
    files = [(str(p), stat.st_size, stat.st_mtime_ns) for p, stat in stats]
    shape = (data.split, data.limit_train, data.max_length, data.overlong, data.format)
    return Hasher.hash(("sft", files, shape, form, template, seed, Hasher.hash(tokenizer)))


def source_file(data: DataConfig) -> str:
    """data.path as the in-memory reader names it in each Example."""
    return str(Path(data.path).expanduser())


def held_split(folder: Path, name: str, data: DataConfig) -> list[Example]:
    """A val or test split in memory: the given file, or its rows of data.path."""
    carved = folder / f"{name}_rows.npy"
    if not carved.is_file():
        return read_examples(getattr(data, f"{name}_path"), data.format)
    return list(RecordExamples(folder / RECORDS, np.load(carved), source_file(data)))


def prepare_sft_arrow(
    data: DataConfig, form: SftFormat, tokenizer: PreTrainedTokenizerBase, seed: int
) -> LmData:
    """prepare_sft's rows with the train split in Arrow files: built once per key, reopened."""
    check_streamable(data, form)
    template = resolve_template(form.template, tokenizer)
    key = cache_key(data, form, tokenizer, template, seed)
    folder, reused = cached_build(
        key, lambda into: build_sft(data, form, tokenizer, template, seed, into)
    )
    train_order = np.load(folder / "train_rows.npy", mmap_mode="r")
    result = LmData({"train": ArrowRows(folder / TRAIN)}, template=template)
    result.examples = {"train": RecordExamples(folder / RECORDS, train_order, source_file(data))}
    splits = {"train": json.loads((folder / SUMMARY).read_text())["train"]}
    for name in ("val", "test"):
        examples = held_split(folder, name, data)
        encoded = encode_examples(examples, tokenizer, form, template, data)
        if not encoded.examples:
            raise empty_after_length_policy(name, data)
        result.examples[name], result.encoded[name] = examples, encoded.examples
        splits[name] = split_summary(encoded, len(examples))
    result.summary = {
        "template": template,
        "mix": {data.path: len(train_order)},
        "splits": splits,
        "max_length": data.max_length,
        "overlong": data.overlong,
        "packing": False,
        "streaming": {"cache": str(folder), "reused": reused},
    }
    return result
