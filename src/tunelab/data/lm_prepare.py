"""The generative tasks' data: sft conversations (split, mixed by weight, templated, encoded)
and pretrain documents (split by document, packed into blocks)."""

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from transformers import PreTrainedTokenizerBase

from tunelab.config import DataConfig
from tunelab.data.conversations import Example, read_examples
from tunelab.data.lm_encode import (
    IGNORE,
    LmEncoded,
    apply_length_policy,
    blocks_of,
    encode_segments,
    pack,
)
from tunelab.data.prepare import three_splits
from tunelab.data.readers import read_records
from tunelab.data.templates import adds_special_tokens, render, resolve_template
from tunelab.errors import DataError, TunelabError

TEXT_SUFFIXES = (".txt", ".md")


@dataclass(frozen=True)
class SftFormat:
    """How conversations become trained tokens (the sft task's settings, as the data sees them)."""

    template: str = "auto"
    system: str | None = None
    train_on_prompt: bool = False
    packing: bool = False
    reasoning: str = "train"  # templates.REASONING_POLICIES


@dataclass
class LmData:
    encoded: dict[str, list[dict]]  # split -> {"input_ids", "labels"}
    examples: dict[str, list[Example]] = field(default_factory=dict)  # sft: the test questions
    summary: dict = field(default_factory=dict)
    template: str | None = None


def split_by_fractions(items: list, fractions: tuple[float, ...], seed: int) -> list[list]:
    shuffled = items[:]
    random.Random(seed).shuffle(shuffled)
    cuts = [round(len(shuffled) * sum(fractions[: i + 1])) for i in range(len(fractions))]
    return [shuffled[a:b] for a, b in zip([0, *cuts[:-1]], cuts, strict=True)]


def split_files(
    config: DataConfig, seed: int, read: Callable[[str], list], read_test: bool = True
) -> dict[str, list]:
    """Train/val/test as for classification, without stratification; given files win. `read`
    turns a file into the task's rows (sft's conversations, grpo's prompts). read_test=False
    (a search trial, scored on validation): the test file is never opened and test rows carved
    from `path` are dropped unread, so train and val are the final run's."""
    rows = read(config.path)
    test = None
    if config.test_path:  # unread, it stands as given (empty): train and val come out the same
        test = read(config.test_path) if read_test else []
    val = read(config.val_path) if config.val_path else None
    train, val, test = three_splits(rows, val, test, config.split, split_by_fractions, seed)
    if config.limit_train:
        train = train[: config.limit_train]
    named = {"train": train, "val": val, "test": test if read_test else []}
    for name, part in named.items():
        if not part and (read_test or name != "test"):
            raise TunelabError(f"{config.path}: the {name} split is empty; change data.split")
    return named


def sft_splits(config: DataConfig, seed: int, read_test: bool = True) -> dict[str, list[Example]]:
    return split_files(config, seed, lambda path: read_examples(path, config.format), read_test)


def draw(rows: list[Example], count: int, rng: random.Random) -> list[Example]:
    """`count` rows: a shuffled pass over all of them, repeated as often as needed."""
    drawn = []
    while len(drawn) < count:
        drawn += rng.sample(rows, min(len(rows), count - len(drawn)))
    return drawn


def mix_in(train: list[Example], config: DataConfig, seed: int) -> tuple[list[Example], dict]:
    """Add weight x len(train) rows of each extra source, then shuffle everything together."""
    rng, counts, mixed = random.Random(seed), {config.path: len(train)}, list(train)
    for source in config.mix:
        rows = read_examples(source.path, config.format)
        picked = draw(rows, round(len(train) * source.weight), rng)
        counts[source.path] = len(picked)
        mixed += picked
    rng.shuffle(mixed)
    return mixed, counts


def encode_examples(
    examples: list[Example], tokenizer, form: SftFormat, template: str, data: DataConfig
) -> LmEncoded:
    special_tokens = adds_special_tokens(template)
    encoded = [
        encode_segments(
            render(e.messages, template, tokenizer, form.system, e.tools, form.reasoning),
            tokenizer,
            special_tokens,
            form.train_on_prompt,
        )
        for e in examples
    ]
    return apply_length_policy(encoded, data.max_length, data.overlong)


def empty_after_length_policy(split: str, data: DataConfig) -> TunelabError:
    return TunelabError(
        f"the {split} split is empty after the max_length policy: every row is over "
        f"data.max_length={data.max_length} or lost its whole answer to it"
    )


def split_summary(result: LmEncoded, rows: int) -> dict:
    trained = sum(sum(label != IGNORE for label in e["labels"]) for e in result.examples)
    tokens = sum(len(e["input_ids"]) for e in result.examples)
    return {
        "rows": rows,
        "encoded_rows": len(result.examples),
        "tokens": tokens,
        "trained_tokens": trained,
        "truncated_overlong": result.truncated,
        "dropped_overlong": result.dropped,
    }


def prepare_sft(
    data: DataConfig,
    form: SftFormat,
    tokenizer: PreTrainedTokenizerBase,
    seed: int,
    read_test: bool = True,
) -> LmData:
    splits = sft_splits(data, seed, read_test)
    if not read_test:
        del splits["test"]
    splits["train"], mix_counts = mix_in(splits["train"], data, seed)
    tools = any(e.uses_tools for rows in splits.values() for e in rows)
    template = resolve_template(form.template, tokenizer, tools)
    result = LmData({}, template=template)
    result.summary = {"template": template, "mix": mix_counts, "splits": {}}
    for name, rows in splits.items():
        encoded = encode_examples(rows, tokenizer, form, template, data)
        if not encoded.examples:
            raise empty_after_length_policy(name, data)
        result.summary["splits"][name] = split_summary(encoded, len(rows))
        examples = encoded.examples
        if name == "train" and form.packing:
            examples = pack(examples, data.max_length)
        result.encoded[name] = examples
    result.examples = splits
    result.summary.update(max_length=data.max_length, overlong=data.overlong, packing=form.packing)
    return result


def text_files(folder: Path) -> list[Path]:
    """A folder's .txt/.md files, in name order: one document each (a folder named `x.txt`
    and a link to nothing are not files)."""
    files = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in TEXT_SUFFIXES and p.is_file()
    )
    if not files:
        raise TunelabError(f"{folder}: no .txt or .md files in the folder")
    return files


def read_text_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            path,
            f"not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8",
        ) from None
    except OSError as exc:
        raise DataError(path, f"cannot be read ({exc.strerror})") from None


def read_documents(config: DataConfig) -> list[str]:
    """A folder of .txt/.md files (one document each), a single text file, or a JSONL/CSV
    field (data.text_field) with one document per row."""
    path = Path(config.path).expanduser()
    if path.is_dir():
        return [read_text_file(f) for f in text_files(path)]
    if path.suffix.lower() in TEXT_SUFFIXES and path.is_file():
        return [part for part in read_text_file(path).split("\n\n") if part.strip()]
    source, records = read_records(config.path, config.format, config.columns, (config.text_field,))
    for row, record in records:
        if not str(record.get(config.text_field) or "").strip():
            raise DataError(source, "missing or empty", row=row, field=config.text_field)
    return [str(record[config.text_field]) for _, record in records]


SPLITS = ("train", "val", "test")


def document_splits(count: int, data: DataConfig, seed: int) -> dict[str, list[int]]:
    """The documents' indices in each split (seeded; the same in memory and streamed)."""
    if count < 3:
        raise TunelabError(
            f"{data.path}: pretrain needs at least 3 documents to hold some out for perplexity"
        )
    parts = split_by_fractions(list(range(count)), data.split, seed)
    for name, part in zip(SPLITS, parts, strict=True):
        if not part:
            raise TunelabError(f"{data.path}: no document left for the {name} split")
    return dict(zip(SPLITS, parts, strict=True))


def prepare_pretrain(data: DataConfig, tokenizer: PreTrainedTokenizerBase, seed: int) -> LmData:
    """Documents are split first (held-out text is text the model never trained on), then each
    split's token stream, EOS between documents, is cut into max_length blocks."""
    documents = read_documents(data)[: data.limit_train]
    result = LmData({}, summary={"documents": len(documents), "splits": {}})
    for name, indices in document_splits(len(documents), data, seed).items():
        stream = []
        for index in indices:
            stream += tokenizer(documents[index])["input_ids"] + [tokenizer.eos_token_id]
        result.encoded[name] = blocks_of(stream, data.max_length)
        result.summary["splits"][name] = {
            "documents": len(indices),
            "tokens": len(stream),
            "blocks": len(result.encoded[name]),
        }
    result.summary["block_size"] = data.max_length
    return result
