"""lm-evaluation-harness tasks over the shipped benchmark files, with no Hub access: each task
includes lm-eval's own definition (prompt, choices, metric, filters) and only points its data at
a local JSONL written here. The same folder serves `tunelab bench` and the `lm_eval` CLI
(`--include_path`), so both score the very same documents."""

import hashlib
import json
import random
from pathlib import Path

import lm_eval
import yaml

from tunelab.bench.bfcl import NAMES as BFCL_NAMES
from tunelab.bench.sources import BENCHMARKS, Benchmark
from tunelab.errors import TunelabError
from tunelab.files import write_whole
from tunelab.models.embedded import cache_root

PREFIX = "tunelab_"
# Seven multiple-choice suites in minutes on 2 CPU cores; `all` adds MMLU and GSM8K's generation.
QUICK = ("arc_easy", "arc_challenge", "hellaswag", "piqa", "winogrande", "boolq", "truthfulqa_mc1")
QUICK_LIMIT = 100
# `bfcl`: tool calling (bench/bfcl.py), generated and judged by BFCL's checker, not lm-eval
SUITES = {"quick": QUICK, "all": tuple(BENCHMARKS), "bfcl": BFCL_NAMES}


def task_name(benchmark: str) -> str:
    return PREFIX + benchmark


def pick(spec: str) -> list[str]:
    """`quick`, `all` or names (`arc_easy,hellaswag`); an unknown name is a one-line error."""
    if spec in SUITES:
        return list(SUITES[spec])
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS and n not in BFCL_NAMES]
    if unknown or not names:
        raise TunelabError(
            f"--tasks: unknown benchmark {', '.join(unknown) or repr(spec)}; choose from quick, "
            f"all, bfcl or {', '.join([*BENCHMARKS, *BFCL_NAMES])}"
        )
    return names


def subset(docs: list[dict], limit: int | None, seed: int) -> list[dict]:
    """A seeded sample of `limit` documents, in their file order (the full split without one)."""
    if limit is None or limit >= len(docs):
        return docs
    keep = sorted(random.Random(seed).sample(range(len(docs)), limit))
    return [docs[i] for i in keep]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def task_config(benchmark: Benchmark, files: dict[str, str]) -> dict:
    """lm-eval's definition, included; only the data (local JSON files) and splits change."""
    few_shot = "train" if "train" in files else None
    return {
        "include": str(Path(lm_eval.__file__).parent / "tasks" / benchmark.builtin),
        "task": task_name(benchmark.name),
        "tag": ["tunelab_bench"],
        "dataset_path": "json",
        "dataset_name": None,
        "dataset_kwargs": {"data_files": files},
        "test_split": "test",
        "training_split": few_shot,
        "validation_split": None,
        "fewshot_split": few_shot,
        **benchmark.overrides,
    }


def definitions_version() -> str:
    """Changes when the readers, these definitions or lm-eval change: a folder written by another
    version is never reused."""
    from tunelab.bench import bfcl, sources

    digest = hashlib.sha256(lm_eval.__version__.encode())
    for module in (sources.__file__, bfcl.__file__, __file__):
        digest.update(Path(module).read_bytes())
    return digest.hexdigest()[:10]


def write_tasks(names: list[str], source: Path, limit: int | None, seed: int = 0) -> Path:
    """The task folder for these benchmarks at this limit and seed (written once, then reused
    while the definitions stay the same): one JSONL per split and one YAML per task."""
    size = "all" if limit is None else limit
    folder = cache_root() / "bench" / f"{size}-seed{seed}-{definitions_version()}"
    folder.mkdir(parents=True, exist_ok=True)
    for name in (n for n in names if n in BENCHMARKS):  # BFCL's categories need no lm-eval task
        config_path = folder / f"{task_name(name)}.yaml"
        if config_path.is_file():
            continue
        benchmark = BENCHMARKS[name]
        docs = benchmark.read(source)
        files = {}
        for split, rows in docs.items():
            rows = subset(rows, limit, seed) if split == benchmark.scored_split else rows
            path = folder / f"{name}.{split}.jsonl"
            write_jsonl(path, rows)
            files["test" if split == benchmark.scored_split else split] = str(path)
        # written last and whole: a folder interrupted mid-write is never taken as complete
        write_whole(config_path, yaml.safe_dump(task_config(benchmark, files), sort_keys=False))
    return folder
