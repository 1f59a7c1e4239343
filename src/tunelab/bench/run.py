"""Standard benchmarks before and after tuning: lm-evaluation-harness on tunelab's loaded model
(the run's adapter applied), over the local tasks of bench/tasks.py. Each figure comes with
lm-eval's standard error; tuned against base is a paired difference over the same documents."""

import functools
import math
import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from tunelab.bench.sources import BENCHMARKS, bench_dir
from tunelab.bench.tasks import task_name, write_tasks
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


def score(model, tokenizer, settings: BenchSettings) -> dict[str, dict]:
    """Every benchmark's figure, its standard error, and each document's outcome."""
    offline()
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    folder = task_folder(settings)
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=settings.batch_size)
    out = simple_evaluate(
        model=lm,
        tasks=[task_name(n) for n in settings.names],
        task_manager=TaskManager(include_path=str(folder)),
        num_fewshot=settings.fewshot,
        apply_chat_template=settings.chat,
        log_samples=True,
        bootstrap_iters=1000,
        random_seed=settings.seed,
        numpy_random_seed=settings.seed,
        torch_random_seed=settings.seed,
        fewshot_random_seed=settings.seed,
    )
    figures = {}
    for name in settings.names:
        metric, kept = metric_of(name)
        result = out["results"][task_name(name)]
        outcomes = per_document(out["samples"][task_name(name)], metric, kept)
        figures[name] = {
            "metric": metric,
            "score": result[f"{metric},{kept}"],
            "stderr": result.get(f"{metric}_stderr,{kept}"),
            "n": len(outcomes),
            "outcomes": outcomes,
        }
    return figures


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
        }
        for name in tuned
    }


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


def load_target(target: str):
    """A finished run (its model with the adapter applied, and the base it started from) or a
    model (embedded name or folder; no base to compare with)."""
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
        if isinstance(model, PeftModel):
            return model, model.disable_adapter, tokenizer  # the base is the model, adapter off
        base = load_base(record, tokenizer)
        base.eval()
        return model, nullcontext_of(base), tokenizer
    if path.is_dir() and not (path / "config.json").is_file():
        raise TunelabError(f"{target}: neither a finished run (no {RUN_INFO}) nor a model folder")
    folder = resolve_model(target)
    model = load_causal_lm(folder)
    model.eval()
    return model, None, load_tokenizer(folder)


def nullcontext_of(model):
    """The base as a context giving the model, like PeftModel.disable_adapter gives its own."""
    return lambda: nullcontext(model)


def bench(target: str, settings: BenchSettings) -> dict:
    """The benchmarks on a run (base and tuned side by side) or on a model alone."""
    model, base, tokenizer = load_target(target)
    tuned = score(model, tokenizer, settings)
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
    if base is None:
        return result | {"scores": drop_outcomes(tuned)}
    with base() as base_model:
        base_scores = score(base_model or model, tokenizer, settings)
    return result | {"scores": side_by_side(base_scores, tuned)}
