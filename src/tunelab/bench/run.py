"""Standard benchmarks before and after tuning: lm-evaluation-harness on tunelab's loaded model
(the run's adapter applied), over the local tasks of bench/tasks.py. Each figure comes with
lm-eval's standard error; tuned against base is a paired difference over the same documents."""

import functools
import math
import os
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunelab.bench.bfcl import NAMES as BFCL_NAMES
from tunelab.bench.bfcl import score_category
from tunelab.bench.cache import (
    forget_requests,
    keep,
    kept_path,
    model_identity,
    read_kept,
    requests_path,
    seconds_before,
)
from tunelab.bench.sources import BENCHMARKS, bench_dir
from tunelab.bench.tasks import definitions_version, task_name, write_tasks
from tunelab.errors import TunelabError
from tunelab.models.embedded import cache_root

Z95 = 1.959964


@dataclass(frozen=True)
class BenchSettings:
    names: list[str]
    limit: int | None = None
    fewshot: int | None = None
    batch_size: int = 16
    chat: bool = False
    seed: int = 0


def offline() -> None:
    """lm-eval and Datasets read only the local files: never the Hub."""
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"


def task_folder(settings: BenchSettings) -> Path:
    """The lm-eval task folder of these settings, written once per process (a run scores before
    and after training, `tunelab bench` the base and the tuned model, on the same folder)."""
    source, cache = bench_dir(), cache_root()  # in the key: the environment may name others
    return written_tasks(tuple(settings.names), settings.limit, settings.seed, source, cache)


@functools.cache
def written_tasks(
    names: tuple[str, ...], limit: int | None, seed: int, source: Path, cache: Path
) -> Path:
    return write_tasks(list(names), source, limit, seed)


def metric_of(name: str) -> tuple[str, str]:
    """The figure a benchmark reports (`acc_norm` where lm-eval's leaderboards use it) and its
    filter (`none`, or gsm8k's `strict-match`)."""
    metric, _, kept = BENCHMARKS[name].metric.partition(",")
    return metric, kept or "none"


def per_document(samples: list[dict], metric: str, kept: str) -> list[float]:
    """Each document's outcome, in document order (for a paired difference)."""
    rows = [s for s in samples if s.get("filter", "none") == kept]
    return [float(s[metric]) for s in sorted(rows, key=lambda s: s["doc_id"])]


def score(model, tokenizer, settings: BenchSettings, folder: Path | None = None) -> dict:
    """Every benchmark's figure, its standard error, each document's outcome and the seconds it
    took. With `folder` (an unchanged model loaded from it) each benchmark's figures are kept as
    they are scored and reused the next time (bench/cache.py)."""
    identity = model_identity(folder, model, tokenizer) if folder is not None else None
    figures = {}
    for name in settings.names:  # one at a time: an interrupted suite keeps what it finished
        path = kept_path(identity, name, settings_key(settings)) if identity else None
        kept = read_kept(path) if path is not None else None
        if kept is not None:
            figures[name] = kept | {"kept": True}
            continue
        started = time.perf_counter()
        requests = requests_path(path) if path is not None else None
        earlier = seconds_before(requests, time.time()) if requests is not None else 0.0
        figures[name] = score_one(model, tokenizer, name, settings, requests)
        figures[name]["seconds"] = round(earlier + time.perf_counter() - started, 1)
        if path is not None:
            keep(path, figures[name])
            forget_requests(requests)
    return figures


def settings_key(settings: BenchSettings) -> list:
    """What besides the model decides a benchmark's figures."""
    return [
        settings.limit,
        settings.fewshot,
        settings.chat,
        settings.seed,
        settings.batch_size,
        definitions_version(),
    ]


def score_one(
    model, tokenizer, name: str, settings: BenchSettings, requests: Path | None = None
) -> dict:
    """One benchmark: BFCL's categories generated and judged here (bench/bfcl.py), the others
    through lm-eval. With `requests` (an unchanged model's) lm-eval writes each answered request
    there as it goes, so a benchmark stopped half-way (hours on 2 cores: HellaSwag, GSM8K)
    resumes where it stopped."""
    if name in BFCL_NAMES:
        return score_category(
            model, tokenizer, name, settings.limit, settings.seed, settings.batch_size
        )
    offline()
    from lm_eval import simple_evaluate

    out = simple_evaluate(
        model=harness_model(model, tokenizer, settings.batch_size),
        tasks=[task_name(name)],
        task_manager=task_manager(str(task_folder(settings))),
        num_fewshot=settings.fewshot,
        apply_chat_template=settings.chat,
        log_samples=True,
        bootstrap_iters=1000,
        random_seed=settings.seed,
        numpy_random_seed=settings.seed,
        torch_random_seed=settings.seed,
        fewshot_random_seed=settings.seed,
        use_cache=str(requests) if requests is not None else None,
    )
    metric, kept = metric_of(name)
    result = out["results"][task_name(name)]
    samples = out["samples"][task_name(name)]
    outcomes = per_document(samples, metric, kept)
    return {
        "metric": metric,
        "score": result[f"{metric},{kept}"],
        "stderr": result.get(f"{metric}_stderr,{kept}"),
        "n": len(outcomes),
        "outcomes": outcomes,
        # what the model was asked first (its prompt, few-shot and chat template included)
        "example": samples[0]["arguments"][0][0] if samples else "",
    }


def task_manager(folder: str):
    """lm-eval's index of tunelab's task folder only: each task includes lm-eval's own YAML by
    its path, so lm-eval's thousands of tasks need no indexing (20 s per benchmark saved)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=folder, include_defaults=False)


def harness_model(model, tokenizer, batch_size: int):
    """lm-eval's wrapper of a loaded model (cheap; made per benchmark)."""
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)


def paired(base: dict, tuned: dict) -> dict:
    """Tuned minus base over the same documents: the difference, its paired standard error,
    and whether it is beyond noise (outside ±1.96 standard errors)."""
    diffs = [t - b for b, t in zip(base["outcomes"], tuned["outcomes"], strict=True)]
    n = len(diffs)
    mean = sum(diffs) / n
    variance = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else 0.0
    stderr = math.sqrt(variance / n)
    return {
        "difference": tuned["score"] - base["score"],
        "stderr": stderr,
        "beyond_noise": abs(mean) > Z95 * stderr if stderr > 0 else mean != 0,
    }


def side_by_side(base: dict[str, dict], tuned: dict[str, dict]) -> dict[str, dict]:
    return {
        name: {
            "metric": tuned[name]["metric"],
            "n": tuned[name]["n"],
            "base": base[name]["score"],
            "base_stderr": base[name]["stderr"],
            "tuned": tuned[name]["score"],
            "tuned_stderr": tuned[name]["stderr"],
            **paired(base[name], tuned[name]),
            "base_seconds": base[name]["seconds"],
            "base_kept": base[name].get("kept", False),
            "tuned_seconds": tuned[name]["seconds"],
            **counted(base[name], tuned[name]),
        }
        for name in tuned
    }


def counted(base: dict, tuned: dict) -> dict:
    """BFCL's categories also keep their counts and the tuned model's first failures."""
    if "correct" not in tuned:
        return {}
    kept = {"base_correct": base["correct"], "correct": tuned["correct"]}
    return kept | {"failures": tuned["failures"]}


def gate_failures(rows: dict[str, dict], drop_points: float) -> list[str]:
    """The benchmarks where the tuned model lost more than `drop_points` (percentage points)
    and the loss is beyond noise."""
    return [
        f"{name}: {100 * row['base']:.1f} -> {100 * row['tuned']:.1f} "
        f"({100 * row['difference']:+.1f} points, stderr {100 * row['stderr']:.1f})"
        for name, row in rows.items()
        if -row["difference"] > drop_points / 100 and row["beyond_noise"]
    ]


def drop_outcomes(rows: dict[str, dict]) -> dict[str, dict]:
    """bench.json keeps the figures, not each document's outcome."""
    return {name: {k: v for k, v in row.items() if k != "outcomes"} for name, row in rows.items()}


def bench_path(run_dir: Path) -> Path:
    return run_dir / "bench.json"


@dataclass
class Target:
    """What `tunelab bench` scores: the model (a run's, adapter applied), its base as a context
    (a run's: PeftModel.disable_adapter or the base loaded apart; None for a model alone), and
    the folder each unchanged model was loaded from (its figures are kept)."""

    model: Any
    tokenizer: Any
    base: Callable | None = None
    base_folder: Path | None = None
    model_folder: Path | None = None


def load_target(target: str) -> Target:
    """A finished run or a model (embedded name or folder; no base to compare with)."""
    from peft import PeftModel

    from tunelab.artifacts import load_base, load_run
    from tunelab.models.embedded import resolve_model
    from tunelab.models.loader import load_causal_lm, load_tokenizer
    from tunelab.run_record import RUN_INFO

    path = Path(target)
    if (path / RUN_INFO).is_file():
        model, tokenizer, record = load_run(path)
        if record.model_kind != "causal_lm":
            raise TunelabError(
                f"{target}: a {record.task} run is a classifier; benchmarks score language "
                "models (sft, pretrain, dpo, grpo, ... runs or a model)"
            )
        base_folder = Path(record.base_model) if Path(record.base_model).is_dir() else None
        if isinstance(model, PeftModel):  # the base is the model, adapter off
            return Target(model, tokenizer, model.disable_adapter, base_folder)
        base = load_base(record, tokenizer)
        base.eval()
        return Target(model, tokenizer, lambda: nullcontext(base), base_folder)
    if path.is_dir() and not (path / "config.json").is_file():
        raise TunelabError(f"{target}: neither a finished run (no {RUN_INFO}) nor a model folder")
    folder = resolve_model(target)
    model = load_causal_lm(folder)
    model.eval()
    return Target(model, load_tokenizer(folder), model_folder=Path(folder))


def bench(target: str, settings: BenchSettings) -> dict:
    """The benchmarks on a run (base and tuned side by side) or on a model alone."""
    loaded = load_target(target)
    tuned = score(loaded.model, loaded.tokenizer, settings, loaded.model_folder)
    result = {
        "target": target,
        "settings": {
            "tasks": settings.names,
            "limit": settings.limit,
            "fewshot": settings.fewshot,
            "chat": settings.chat,
            "seed": settings.seed,
        },
        # the lm-eval task folder, for `lm_eval --include_path`
        "task_folder": str(task_folder(settings)),
    }
    if loaded.base is None:
        return result | {"scores": drop_outcomes(tuned)}
    with loaded.base() as base_model:
        base_scores = score(
            base_model or loaded.model, loaded.tokenizer, settings, loaded.base_folder
        )
    return result | {"scores": side_by_side(base_scores, tuned)}
