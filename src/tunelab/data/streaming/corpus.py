"""data.streaming: pretrain corpora bigger than memory, through `datasets`' Arrow files.

The documents are written once to an Arrow file (datasets' ArrowWriter, a batch at a time),
split by the same seeded shuffle of their indices as in memory, tokenized by `Dataset.map` in
data.num_proc processes, and cut into max_length blocks, one Arrow file per split, read
memory-mapped while training. Blocks, split and counts equal the in-memory path's.
Tokenization goes in rounds on fresh memory maps (files.mapped_rounds says why).

The block files are kept under a key of the corpus files (path, size, modification time), the
tokenizer and the settings that shape the blocks, so a second run with the same key opens them
at once. Written by hand: only the document readers (datasets' text loader splits on lines,
not on blank lines as tunelab's paragraphs) and the block cutting (carried across map batches
so every token lands in exactly one block, as `blocks_of` does in memory)."""

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from datasets import Dataset, Features, Value
from datasets import List as ArrowList
from datasets.arrow_writer import ArrowWriter
from datasets.fingerprint import Hasher
from transformers import PreTrainedTokenizerBase

from tunelab.config import DataConfig
from tunelab.data.lm_prepare import TEXT_SUFFIXES, LmData, document_splits, text_files
from tunelab.data.streaming.files import (
    SUMMARY,
    WRITE_BATCH,
    ArrowRows,
    cached_build,
    mapped_rounds,
    rows_per_round,
)
from tunelab.errors import DataError, TunelabError

AUTO_STREAMING_BYTES = 1 << 30  # corpora above 1 GiB stream even without data.streaming
READ_CHUNK = 1 << 20  # characters of a text file read at a time


def corpus_files(config: DataConfig) -> list[Path]:
    path = Path(config.path).expanduser()
    if path.is_dir():
        return text_files(path)
    if not path.is_file():
        raise TunelabError(f"data file not found: {path}")
    return [path]


def corpus_bytes(config: DataConfig) -> int:
    return sum(f.stat().st_size for f in corpus_files(config))


def streams(config: DataConfig) -> bool:
    """data.streaming, or a corpus too big to read into memory whole (a built-in data set or
    a missing file: the in-memory reader names it)."""
    if config.streaming:
        return True
    return Path(config.path).expanduser().exists() and corpus_bytes(config) > AUTO_STREAMING_BYTES


def cache_key(config: DataConfig, tokenizer: PreTrainedTokenizerBase, seed: int) -> str:
    files = [
        (str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in corpus_files(config)
    ]
    shape = (config.format, config.text_field, config.split, config.limit_train, config.max_length)
    return Hasher.hash((files, shape, seed, Hasher.hash(tokenizer)))


def paragraphs(path: Path) -> Iterator[str]:
    """A text file's blank-line-separated parts, as `text.split("\\n\\n")` gives them, read a
    chunk at a time."""
    carry = ""
    with path.open(encoding="utf-8") as handle:
        while chunk := handle.read(READ_CHUNK):
            *parts, carry = (carry + chunk).split("\n\n")
            yield from (part for part in parts if part.strip())
    if carry.strip():
        yield carry


def jsonl_texts(path: Path, field: str) -> Iterator[str]:
    with path.open(encoding="utf-8") as handle:
        for row, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(path, f"not valid JSON ({exc.msg})", row=row) from None
            text = record.get(field) if isinstance(record, dict) else None
            if not str(text or "").strip():
                raise DataError(path, "missing or empty", row=row, field=field)
            yield str(text)


def documents(config: DataConfig) -> Iterator[str]:
    """The corpus a document at a time: each .txt/.md file of a folder, a text file's
    paragraphs, or a JSONL file's data.text_field."""
    files = corpus_files(config)
    if Path(config.path).expanduser().is_dir():
        yield from (f.read_text(encoding="utf-8") for f in files)
    elif files[0].suffix.lower() in TEXT_SUFFIXES:
        yield from paragraphs(files[0])
    elif files[0].suffix.lower() == ".jsonl" or config.format == "jsonl":
        yield from jsonl_texts(files[0], config.text_field)
    else:
        raise TunelabError(
            f"{config.path}: data.streaming reads .txt/.md files, folders of them and .jsonl "
            "(one document per line); convert the file or set data.streaming=false"
        )


def write_documents(config: DataConfig, path: Path) -> tuple[int, int]:
    """The corpus into one Arrow file; returns its documents and bytes of text."""
    features = Features({"text": Value("string")})
    count, size = 0, 0
    with ArrowWriter(path=str(path), features=features, writer_batch_size=WRITE_BATCH) as writer:
        batch = []
        for text in documents(config):
            batch.append(text)
            count, size = count + 1, size + len(text)
            if len(batch) == WRITE_BATCH:
                writer.write_batch({"text": batch})
                batch = []
        if batch:
            writer.write_batch({"text": batch})
        writer.finalize()
    return count, size


def token_ids(tokenizer: PreTrainedTokenizerBase) -> Callable[[dict], dict]:
    """A batched map: each document's ids and an EOS."""
    eos = tokenizer.eos_token_id

    def encode(batch: dict) -> dict:
        return {"input_ids": [ids + [eos] for ids in tokenizer(batch["text"])["input_ids"]]}

    return encode


class BlockWriter:
    """A split's token stream cut into blocks of `block` (the last shorter; a lone final token
    joins the block before it), written as they fill, a round of documents at a time."""

    def __init__(self, path: Path, block: int):
        features = Features({"input_ids": ArrowList(Value("int32"))})
        self.writer = ArrowWriter(path=str(path), features=features, writer_batch_size=WRITE_BATCH)
        self.block, self.carry, self.held = block, [], None
        self.counts = {"tokens": 0, "blocks": 0}

    def put(self, rows: list[list[int]]) -> None:
        if rows:
            self.writer.write_batch({"input_ids": rows})
            self.counts["blocks"] += len(rows)

    def add(self, tokens: Dataset) -> None:
        for batch in tokens.iter(batch_size=WRITE_BATCH):
            for ids in batch["input_ids"]:
                self.carry.extend(ids)
                self.counts["tokens"] += len(ids)
            full = len(self.carry) // self.block * self.block
            rows = [self.carry[i : i + self.block] for i in range(0, full, self.block)]
            self.carry = self.carry[full:]
            if rows:  # the newest full block waits: a lone final token may still join it
                self.put(([self.held] if self.held else []) + rows[:-1])
                self.held = rows[-1]

    def finish(self) -> dict:
        if self.held and len(self.carry) == 1:
            self.held, self.carry = self.held + self.carry, []
        self.put([row for row in (self.held, self.carry) if row])
        self.writer.finalize()
        self.writer.close()
        return self.counts


def block_row(stored: dict) -> dict:
    """A stored block as the trainers' row: its labels are its inputs."""
    return {"input_ids": stored["input_ids"], "labels": list(stored["input_ids"])}


def write_split(
    documents: Path,
    indices: list[int],
    per_round: int,
    tokenizer: PreTrainedTokenizerBase,
    config: DataConfig,
    path: Path,
) -> dict:
    """One split's blocks, tokenized a round of documents at a time (module docstring)."""
    blocks = BlockWriter(path, config.max_length)
    num_proc = config.num_proc or os.cpu_count() or 1
    encode = token_ids(tokenizer)
    for tokens in mapped_rounds(documents, indices, per_round, encode, num_proc, documents.parent):
        blocks.add(tokens)
    return blocks.finish()


def build_blocks(
    config: DataConfig, tokenizer: PreTrainedTokenizerBase, seed: int, folder: Path
) -> dict:
    """Documents, split, tokens and blocks into `folder`; the summary, also written there."""
    work = folder / "work"  # the documents and token files, deleted once the blocks exist
    work.mkdir(parents=True)
    documents = work / "documents.arrow"
    written, text_size = write_documents(config, documents)
    count = min(written, config.limit_train or written)
    per_round = rows_per_round(written, text_size)
    summary = {"documents": count, "splits": {}, "block_size": config.max_length}
    for name, indices in document_splits(count, config, seed).items():
        path = folder / f"{name}.arrow"
        counts = write_split(documents, indices, per_round, tokenizer, config, path)
        summary["splits"][name] = {"documents": len(indices), **counts}
    shutil.rmtree(work)
    (folder / SUMMARY).write_text(json.dumps(summary))
    return summary


def prepare_pretrain_arrow(
    config: DataConfig, tokenizer: PreTrainedTokenizerBase, seed: int
) -> LmData:
    """prepare_pretrain's blocks from Arrow files: built once per cache key, then reopened."""
    key = cache_key(config, tokenizer, seed)
    folder, reused = cached_build(key, lambda into: build_blocks(config, tokenizer, seed, into))
    summary = json.loads((folder / SUMMARY).read_text())
    encoded = {name: ArrowRows(folder / f"{name}.arrow", block_row) for name in summary["splits"]}
    summary["streaming"] = {"cache": str(folder), "reused": reused}
    return LmData(encoded, summary=summary)
