"""Preference data: (prompt, chosen, rejected) pairs, from pairwise files or ranked lists.

Accepted records: `prompt`/`chosen`/`rejected` (HH-RLHF style, prompt may be a transcript);
`instruction`/`input`/`chosen`/`rejected` (the rasbt preference set); `prompt` + `ranked`
(completions best first: expanded into every better/worse pair, as InstructGPT's K-wise
rankings are)."""

from dataclasses import dataclass
from itertools import combinations

from tunelab.data.conversations import text_of
from tunelab.data.readers import read_records
from tunelab.data.templates import generation_prompt
from tunelab.errors import DataError, notice

FORMAT_HINT = "expected prompt (or instruction/input) with chosen/rejected, or prompt with ranked"


@dataclass(frozen=True)
class Pair:
    prompt: str  # the user's question (rendered by the template later)
    chosen: str
    rejected: str
    row: int
    file: str


def prompt_of(record: dict, path, row: int) -> str:
    if "instruction" in record:
        instruction = text_of(record, "instruction", path, row)
        extra = text_of(record, "input", path, row, required=False)
        return f"{instruction}\n\n{extra}" if extra else instruction
    if "prompt" not in record:
        raise DataError(path, f"unknown record format; {FORMAT_HINT}", row=row)
    return text_of(record, "prompt", path, row)


def pairs_of(record: dict, path, row: int) -> list[Pair]:
    prompt = prompt_of(record, path, row)
    if "ranked" in record:
        ranked = record["ranked"]
        if (
            not isinstance(ranked, list)
            or len(ranked) < 2
            or not all(isinstance(r, str) and r.strip() for r in ranked)
        ):
            raise DataError(
                path, "must be a list of at least 2 non-empty completions", row=row, field="ranked"
            )
        return [
            Pair(prompt, better, worse, row, str(path)) for better, worse in combinations(ranked, 2)
        ]
    chosen, rejected = (text_of(record, key, path, row) for key in ("chosen", "rejected"))
    return [Pair(prompt, chosen, rejected, row, str(path))]


def read_pairs(source: str, fmt: str = "auto") -> list[Pair]:
    """The file's pairs; a pair whose chosen equals its rejected prefers nothing and is left out
    with a note (real sets have a few: HH-RLHF), and a file of nothing else is an error."""
    path, records = read_records(source, fmt)
    pairs = [pair for row, record in records for pair in pairs_of(record, path, row)]
    if not pairs:
        raise DataError(path, "no data rows")
    kept = [p for p in pairs if p.chosen.strip() != p.rejected.strip()]
    if not kept:
        raise DataError(path, "every pair's chosen equals its rejected: there is nothing to prefer")
    if len(kept) < len(pairs):
        same = [p.row for p in pairs if p.chosen.strip() == p.rejected.strip()]
        notice(
            f"{path}: {len(same)} pairs whose chosen equals their rejected were left out "
            f"(first: row {same[0]})"
        )
    return kept


def rendered_prompt(pair: Pair, template: str, tokenizer, system: str | None) -> str:
    """The prompt as the model sees it; `{prompt}` keeps a transcript (HH-RLHF) as it is."""
    return generation_prompt(
        [{"role": "user", "content": pair.prompt}], template, tokenizer, system
    )


def read_prompts(source: str, fmt: str = "auto") -> list[str]:
    """Prompts for PPO rollouts: a prompt, question or instruction(+input) field per row."""
    path, records = read_records(source, fmt)
    prompts = []
    for row, record in records:
        if "question" in record and "prompt" not in record:
            record = {**record, "prompt": record["question"]}
        prompts.append(prompt_of(record, path, row))
    if not prompts:
        raise DataError(path, "no data rows")
    return prompts
