"""The shipped benchmark files, read into the fields lm-evaluation-harness's own task definitions
expect (its `cais/mmlu`, `allenai/ai2_arc`, `Rowan/hellaswag`, ... layouts), so tunelab's
benchmark tasks can include lm-eval's prompts and metrics unchanged and only point them at
local files (bench/tasks.py). Formats, licences and row counts: ../shared/data/SOURCES.md."""

import csv
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tunelab.errors import TunelabError

BENCH_DIR_VARIABLE = "TUNELAB_BENCH_DIR"
Docs = dict[str, list[dict]]  # split name -> documents


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: lm-eval's task it follows (a YAML under lm_eval/tasks), how to read the
    shipped files into that task's fields, the split scored, and the file SOURCES.md counts its
    rows under (tests/test_bench.py holds the two to the same count)."""

    name: str
    builtin: str
    read: Callable[[Path], Docs]
    scored_split: str
    source: str
    metric: str = "acc"
    overrides: dict = field(default_factory=dict)


def bench_dir() -> Path:
    """The shipped benchmark files: $TUNELAB_BENCH_DIR, else ../shared/data/bench beside the
    checkout (where this project keeps them)."""
    configured = os.environ.get(BENCH_DIR_VARIABLE)
    folder = Path(configured) if configured else Path(__file__).parents[3] / "../shared/data/bench"
    if not folder.is_dir():
        raise TunelabError(
            f"benchmark files not found in {folder}: set {BENCH_DIR_VARIABLE} to the folder "
            "that holds arc/, hellaswag/, mmlu/, ..."
        )
    return folder.resolve()


def read_jsonl(path: Path) -> list[dict]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise TunelabError(f"{path}: cannot read ({error.strerror})") from None
    rows = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:
                raise TunelabError(f"{path}: row {number}: not a JSON object") from None
    return rows


def labels(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def arc(level: str) -> Callable[[Path], Docs]:
    """ARC's official JSONL: the stem and choices move up to lm-eval's `ai2_arc` fields."""

    def read(folder: Path) -> Docs:
        def doc(row: dict) -> dict:
            choices = row["question"]["choices"]
            return {
                "id": row["id"],
                "question": row["question"]["stem"],
                "choices": {
                    "text": [c["text"] for c in choices],
                    "label": [c["label"] for c in choices],
                },
                "answerKey": row["answerKey"],
            }

        return {
            split: [doc(r) for r in read_jsonl(folder / "arc" / f"ARC-{level}-{name}.jsonl")]
            for split, name in (("test", "Test"), ("train", "Dev"))
        }

    return read


def hellaswag(folder: Path) -> Docs:
    """llama.cpp's six-line format: `activity_label: ctx`, the gold index, four endings. The
    WikiHow markers are already removed, which lm-eval's process_docs would do again (no-op)."""
    lines = (
        (folder / "hellaswag" / "hellaswag_val_full.txt").read_text(encoding="utf-8").split("\n")
    )
    docs = []
    for start in range(0, len(lines) - 5, 6):
        context, gold, *endings = lines[start : start + 6]
        activity, _, ctx = context.partition(": ")
        docs.append(
            {
                "activity_label": activity,
                "ctx_a": ctx,
                "ctx_b": "",
                "endings": endings,
                "label": gold,
            }
        )
    return {"test": docs}


def piqa(folder: Path) -> Docs:
    rows = read_jsonl(folder / "piqa" / "valid.jsonl")
    golds = labels(folder / "piqa" / "valid-labels.lst")
    return {"test": [{**r, "label": int(g)} for r, g in zip(rows, golds, strict=True)]}


def winogrande(folder: Path) -> Docs:
    return {"test": read_jsonl(folder / "winogrande" / "dev.jsonl")}


def boolq(folder: Path) -> Docs:
    """Google's release has `answer: true/false`; lm-eval's super_glue layout wants `label` 0/1."""
    rows = read_jsonl(folder / "boolq" / "dev.jsonl")
    return {"test": [{**r, "label": int(r["answer"])} for r in rows]}


def truthfulqa(folder: Path) -> Docs:
    """The 817-question CSV (with a BOM): MC1's choices are the best answer (right) followed by
    the incorrect answers, as the authors' multiple-choice file builds them."""
    with (folder / "truthfulqa" / "TruthfulQA.csv").open(
        encoding="utf-8-sig", newline=""
    ) as handle:
        rows = list(csv.DictReader(handle))
    docs = []
    for row in rows:
        wrong = [a.strip() for a in row["Incorrect Answers"].split(";") if a.strip()]
        choices = [row["Best Answer"].strip(), *wrong]
        docs.append(
            {
                "question": row["Question"],
                "mc1_targets": {"choices": choices, "labels": [1] + [0] * len(wrong)},
            }
        )
    return {"test": docs}


def mmlu(folder: Path) -> Docs:
    """The 57 subjects' headerless CSVs (44 with CRLF), flattened into one task; the subject
    stays on each question, for the prompt's description."""

    def split(name: str) -> list[dict]:
        docs = []
        for path in sorted((folder / "mmlu" / name).glob(f"*_{name}.csv")):
            subject = path.name.removesuffix(f"_{name}.csv")
            with path.open(encoding="utf-8", newline="") as handle:
                for question, *options, answer in csv.reader(handle):
                    docs.append(
                        {
                            "question": question,
                            "subject": subject,
                            "choices": options,
                            "answer": "ABCD".index(answer.strip()),
                        }
                    )
        return docs

    return {"test": split("test"), "train": split("dev")}


def gsm8k(folder: Path) -> Docs:
    return {
        "test": read_jsonl(folder / "gsm8k" / "test.jsonl"),
        "train": read_jsonl(folder / "gsm8k" / "train.jsonl"),
    }


MMLU_DESCRIPTION = (
    "The following are multiple choice questions (with answers) about "
    "{{subject.replace('_', ' ')}}.\n\n"
)

BENCHMARKS = {
    b.name: b
    for b in (
        Benchmark(
            "arc_easy",
            "arc/arc_easy.yaml",
            arc("Easy"),
            "test",
            "arc/ARC-Easy-Test.jsonl",
            "acc_norm",
        ),
        Benchmark(
            "arc_challenge",
            "arc/arc_easy.yaml",
            arc("Challenge"),
            "test",
            "arc/ARC-Challenge-Test.jsonl",
            "acc_norm",
        ),
        Benchmark(
            "hellaswag",
            "hellaswag/hellaswag.yaml",
            hellaswag,
            "test",
            "hellaswag/hellaswag_val_full.txt",
            "acc_norm",
        ),
        Benchmark("piqa", "piqa/piqa.yaml", piqa, "test", "piqa/valid.jsonl", "acc_norm"),
        Benchmark(
            "winogrande", "winogrande/default.yaml", winogrande, "test", "winogrande/dev.jsonl"
        ),
        Benchmark("boolq", "super_glue/boolq/default.yaml", boolq, "test", "boolq/dev.jsonl"),
        Benchmark(
            "truthfulqa_mc1",
            "truthfulqa/truthfulqa_mc1.yaml",
            truthfulqa,
            "test",
            "truthfulqa/TruthfulQA.csv",
        ),
        Benchmark(
            "mmlu",
            "mmlu/default/_default_template_yaml",
            mmlu,
            "test",
            "mmlu/test/<subject>_test.csv",
            overrides={"description": MMLU_DESCRIPTION},
        ),
        Benchmark(
            "gsm8k",
            "gsm8k/gsm8k.yaml",
            gsm8k,
            "test",
            "gsm8k/test.jsonl",
            "exact_match,strict-match",
        ),
    )
}
