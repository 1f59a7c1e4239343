"""Checks of the encoded rows of the generative tasks: what the model is trained to predict."""

from tunelab.data.lm_encode import IGNORE, encode_segments
from tunelab.data.templates import (
    adds_special_tokens,
    generation_prompt,
    render,
    without_reasoning,
)
from tunelab.doctor.findings import Finding

SAMPLE = 200  # rows looked at by the checks that render and tokenize again


def encoded_rows(task) -> list[dict]:
    encoded = getattr(getattr(task, "data", None), "encoded", None) or {}
    return [row for rows in encoded.values() for row in rows]


def untrained_rows(task, summary: dict) -> list[Finding]:
    """Rows whose answer max_length cut away entirely: tunelab drops them (they would teach
    nothing), so they are counted in the summary; any left in the encoded rows are counted too."""
    rows = encoded_rows(task)
    if not rows:
        return []
    kept_empty = sum(all(label == IGNORE for label in row["labels"]) for row in rows)
    cut = 0
    if summary.get("overlong") == "truncate":
        cut = sum(s.get("dropped_overlong", 0) for s in summary.get("splits", {}).values())
    if not kept_empty + cut:
        return [
            Finding("rows with nothing to learn", "ok", f"every row trains tokens ({len(rows)})")
        ]
    return [
        Finding(
            "rows with nothing to learn",
            "fatal" if kept_empty == len(rows) else "warn",
            f"{kept_empty + cut} of {len(rows) + cut} rows had every answer token cut by "
            f"data.max_length={summary.get('max_length')}"
            + (f" ({cut} dropped)" if cut else "")
            + ": raise max_length, shorten the prompts or set data.truncation_side: left",
        )
    ]


def stop_token(task, summary: dict) -> list[Finding]:
    """EOS must be a trained label (after the collator pads), or answers never stop; the usual
    cause is pad == EOS with a collator that masks every pad-token position."""
    rows, tokenizer = encoded_rows(task), task.tokenizer
    eos = tokenizer.eos_token_id
    if not rows or task.data.template is None:  # pretrain: documents, no answers to end
        return []
    labels = task.collate([dict(row) for row in rows[:16]])["labels"].tolist()
    trained = sum(eos in row for row in labels)
    same = (
        " (the pad token is EOS and the collator masks it)" if tokenizer.pad_token_id == eos else ""
    )
    if trained == 0:
        return [
            Finding(
                "stop token",
                "fatal",
                f"no row trains EOS (id {eos}){same}: the model never learns to stop",
            )
        ]
    if trained < len(labels):
        return [
            Finding(
                "stop token",
                "warn",
                f"{len(labels) - trained} of {len(labels)} rows "
                "do not train EOS (answers cut by max_length)",
            )
        ]
    return [Finding("stop token", "ok", f"EOS (id {eos}) is a trained label in every row")]


def doubled_bos(task, summary: dict) -> list[Finding]:
    rows, bos = encoded_rows(task), task.tokenizer.bos_token_id
    if not rows or bos is None:
        return []
    doubled = sum(row["input_ids"][:2] == [bos, bos] for row in rows)
    if not doubled:
        return [Finding("doubled BOS", "ok", "no row starts with two BOS tokens")]
    message = (
        f"{doubled} of {len(rows)} rows start with BOS twice (the template writes one and the "
        "tokenizer adds one)"
    )
    return [Finding("doubled BOS", "warn", message)]


def template_match(task, summary: dict) -> list[Finding]:
    """The prompt `generate`/`serve` build for a question must be the start of what training
    saw for it, token for token."""
    data = getattr(task, "data", None)
    examples = (getattr(data, "examples", None) or {}).get("test", [])[:SAMPLE]
    if not examples or data.template is None:
        return []
    tokenizer, system = task.tokenizer, task.config.task.system
    special_tokens = adds_special_tokens(data.template)
    policy, differ = getattr(task.config.task, "reasoning", "train"), []
    for example in examples:
        messages = without_reasoning(example.messages) if policy == "drop" else example.messages
        trained = render(messages, data.template, tokenizer, system, example.tools, policy)
        ids = encode_segments(trained, tokenizer, special_tokens, False)["input_ids"]
        text = generation_prompt(messages[:-1], data.template, tokenizer, system, example.tools)
        prompt = tokenizer(text, add_special_tokens=special_tokens)["input_ids"]
        if ids[: len(prompt)] != prompt:
            differ.append(example.row)
    if differ:
        return [
            Finding(
                "inference template",
                "fatal",
                f"for {len(differ)} of {len(examples)} "
                f"test rows (first: row {differ[0]}) the inference prompt is not the "
                "start of the training text: answers come from an unseen prompt "
                "(multi-turn rows need task.template: chat)",
            )
        ]
    return [
        Finding(
            "inference template", "ok", f"inference prompts match training ({len(examples)} rows)"
        )
    ]


LM_CHECKS = (untrained_rows, stop_token, doubled_bos, template_match)
