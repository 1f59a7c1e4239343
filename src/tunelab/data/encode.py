"""Tokenize rows under the max-length policy and batch them with dynamic padding."""

from collections import Counter
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase
from transformers.trainer_pt_utils import LengthGroupedSampler

from tunelab.data.readers import Row


@dataclass
class Encoded:
    examples: list[dict]  # {"input_ids": [...], "labels": int}
    truncated: int
    dropped: int


def encode_rows(
    rows: list[Row],
    tokenizer: PreTrainedTokenizerBase,
    label_ids: dict[str, int],
    max_length: int,
    overlong: str,
    side: str,
) -> Encoded:
    """Tokenize once without truncation, so over-long rows can be counted, then apply the policy."""
    ids = tokenizer([row.text for row in rows], truncation=False)["input_ids"]
    examples, truncated, dropped = [], 0, 0
    for row, tokens in zip(rows, ids, strict=True):
        if len(tokens) > max_length:
            if overlong == "drop":
                dropped += 1
                continue
            truncated += 1
            tokens = tokens[:max_length] if side == "right" else tokens[-max_length:]
        examples.append({"input_ids": tokens, "labels": label_ids[row.label]})
    return Encoded(examples, truncated, dropped)


def label_counts(examples: list[dict], labels: list[str]) -> dict[str, int]:
    counts = Counter(example["labels"] for example in examples)
    return {label: counts.get(i, 0) for i, label in enumerate(labels)}


def batch_order(examples, batch_size: int, shuffle: bool, group_by_length: bool, seed: int):
    """The sampler of make_loader: rows of similar length together (less padding), shuffled, or
    in order. Not shuffled and grouped, rows come longest first (the order of the rows is lost:
    for figures that sum over them, such as perplexity)."""
    generator = torch.Generator().manual_seed(seed)
    if shuffle and group_by_length:
        lengths = [len(example["input_ids"]) for example in examples]
        return LengthGroupedSampler(batch_size, lengths=lengths, generator=generator)
    if shuffle:
        return RandomSampler(examples, generator=generator)
    if group_by_length:  # an evaluation whose figure is a sum over rows: longest rows first
        return sorted(range(len(examples)), key=lambda i: -len(examples[i]["input_ids"]))
    return SequentialSampler(examples)


def padding_share(examples, batch_size: int, group_by_length: bool, seed: int) -> float:
    """Of the tokens in the batches make_loader forms (each padded to its longest row), the
    share that is padding."""
    lengths = [len(example["input_ids"]) for example in examples]
    order = list(batch_order(examples, batch_size, True, group_by_length, seed))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1 - sum(lengths) / padded if padded else 0.0


def make_loader(
    examples: list[dict],
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int,
    shuffle: bool,
    group_by_length: bool = False,
    seed: int = 0,
    collate=None,
) -> DataLoader:
    """Pad each batch to its own longest row, never to the dataset's longest (seed 000 did)."""
    sampler = batch_order(examples, batch_size, shuffle, group_by_length, seed)
    collate = collate or DataCollatorWithPadding(tokenizer, pad_to_multiple_of=None)
    return DataLoader(examples, batch_size=batch_size, sampler=sampler, collate_fn=collate)
