"""Token ids and labels for the generative tasks: response-only labels (-100 elsewhere), EOS so
generation stops, the max-length policy with counts, packing, and the padding collator."""

from dataclasses import dataclass

import torch
from transformers import DataCollatorForSeq2Seq, PreTrainedTokenizerBase

from tunelab.data.templates import Segment

IGNORE = -100  # the label PyTorch's cross-entropy skips


@dataclass
class LmEncoded:
    examples: list[dict]  # {"input_ids": [...], "labels": [...]}
    truncated: int = 0
    dropped: int = 0


def encode_segments(
    segments: list[Segment],
    tokenizer: PreTrainedTokenizerBase,
    special_tokens: bool,
    train_on_prompt: bool,
) -> dict:
    """Token ids and labels, the trained tokens known exactly; each trained segment ends with
    EOS (appended unless the template already closed the turn with it).

    Each segment's tokens are those the conversation so far gains from it, tokenized whole, as
    a prompt is at inference: SentencePiece tokenizers (Llama's) put a word-start mark before a
    segment tokenized alone, so a later turn trained alone would differ from the same turn in
    the prompt. Where tokenizing whole merges across a boundary (`Answer: ` + `The` -> ` The`),
    the segment is tokenized alone, as the prompt alone is at inference."""
    ids, labels, text = [], [], ""
    for segment in segments:
        text += segment.text
        # special_tokens: templates.adds_special_tokens (plain: BOS once; chat writes its own)
        whole = tokenizer(text, add_special_tokens=special_tokens)["input_ids"]
        if whole[: len(ids)] == ids:
            part = whole[len(ids) :]
        else:
            part = tokenizer(segment.text, add_special_tokens=False)["input_ids"]
        if segment.trained and (not part or part[-1] != tokenizer.eos_token_id):
            part = [*part, tokenizer.eos_token_id]
            text += tokenizer.eos_token
        ids += part
        labels += part if (segment.trained or train_on_prompt) else [IGNORE] * len(part)
    return {"input_ids": ids, "labels": labels}


def apply_length_policy(examples: list[dict], max_length: int, overlong: str) -> LmEncoded:
    """Drop or right-truncate rows over max_length, counted; a row left with no trained token is
    dropped (it would teach nothing)."""
    result = LmEncoded([])
    for example in examples:
        if len(example["input_ids"]) > max_length:
            if overlong == "drop":
                result.dropped += 1
                continue
            example = {k: v[:max_length] for k, v in example.items()}
            if all(label == IGNORE for label in example["labels"]):
                result.dropped += 1
                continue
            result.truncated += 1
        result.examples.append(example)
    return result


def pack(examples: list[dict], max_length: int) -> list[dict]:
    """Greedy packing in order: examples are concatenated into rows of at most max_length, so
    fewer, fuller rows carry the same trained tokens. Position ids restart at each example: from
    them Transformers builds a block-diagonal causal mask (masking_utils'
    find_packed_sequence_indices, used when no attention mask is passed), so an example sees
    neither its neighbours nor their positions and trains as it would alone."""
    rows, current = [], {"input_ids": [], "labels": [], "position_ids": []}
    for example in examples:
        if (
            current["input_ids"]
            and len(current["input_ids"]) + len(example["input_ids"]) > max_length
        ):
            rows.append(current)
            current = {"input_ids": [], "labels": [], "position_ids": []}
        current["input_ids"] = current["input_ids"] + example["input_ids"]
        current["labels"] = current["labels"] + example["labels"]
        current["position_ids"] = current["position_ids"] + list(range(len(example["input_ids"])))
    if current["input_ids"]:
        rows.append(current)
    return rows


def blocks_of(stream: list[int], block: int) -> list[dict]:
    """Cut a token stream into blocks (the last one shorter): every token lands in exactly one.
    A lone final token joins the block before it (alone it has nothing to predict from);
    Transformers' run_clm example drops the whole remainder instead."""
    chunks = [stream[i : i + block] for i in range(0, len(stream), block)]
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        tail = chunks.pop()
        chunks[-1] = chunks[-1] + tail
    return [{"input_ids": c, "labels": list(c)} for c in chunks]


def lm_collator(tokenizer: PreTrainedTokenizerBase):
    """Pads input_ids with the pad token and labels with -100, to each batch's longest row.
    Packed rows (with position_ids) get their padding as one more sequence of its own, positions
    from 0, on the tokenizer's padding side: no real token can attend to it."""
    pad = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE, padding=True)

    def collate(features: list[dict]) -> dict:
        if "position_ids" not in features[0]:
            return pad(features)
        positions = [f["position_ids"] for f in features]
        batch = pad([{k: v for k, v in f.items() if k != "position_ids"} for f in features])
        length = batch["input_ids"].shape[1]
        left = tokenizer.padding_side == "left"
        batch["position_ids"] = torch.tensor(
            [
                list(range(length - len(p))) + p if left else p + list(range(length - len(p)))
                for p in positions
            ]
        )
        return batch

    return collate
