"""`eval.bench` in a run: the standard benchmarks on the model before training and after, in the
same process (no reload), written to bench.json beside the task's own figures."""

import json
from pathlib import Path

from tunelab.bench.run import BenchSettings, bench_path, score, side_by_side
from tunelab.bench.tasks import pick
from tunelab.config import RunConfig
from tunelab.errors import TunelabError
from tunelab.files import write_whole


def bench_settings(config: RunConfig, model_kind: str) -> BenchSettings | None:
    """The run's benchmark settings, checked before anything trains: known names, a language
    model to score."""
    names = config.eval.bench
    if not names:
        return None
    if model_kind != "causal_lm":
        raise TunelabError(
            f"eval.bench: task '{config.task.name}' trains a classifier; benchmarks score language "
            "models"
        )
    try:
        picked = pick(",".join(names))
    except TunelabError as error:
        raise TunelabError(f"eval.bench: {str(error).removeprefix('--tasks: ')}") from None
    if config.eval.split == "val":  # benchmarks are test sets: a search trial (scored on
        return None  # validation) reads none of them, and saves their time
    return BenchSettings(picked, config.eval.bench_limit, config.eval.bench_fewshot, seed=0)


def score_model(
    settings: BenchSettings | None, model, tokenizer, base_folder: Path | None = None
) -> dict | None:
    """With `base_folder` (the model before training, loaded from that folder) the figures are
    kept and reused: every seed and search trial of a compare, and `tunelab bench` of the base,
    score a base once (bench/cache.py)."""
    return score(model, tokenizer, settings, base_folder) if settings is not None else None


def local_folder(model_path: str) -> Path | None:
    """The folder a run's model loaded from; None for a Hub id (no files to key the cache on)."""
    path = Path(model_path)
    return path if path.is_dir() else None


def write_bench(run_dir: Path, settings: BenchSettings, before: dict, after: dict) -> None:
    result = {
        "target": str(run_dir),
        "settings": {"tasks": settings.names, "limit": settings.limit, "fewshot": settings.fewshot},
        "scores": side_by_side(before, after),
    }
    write_whole(bench_path(run_dir), json.dumps(result, indent=1))


def bench_figures(before: dict | None, after: dict | None) -> dict[str, float]:
    """For the run summary and compare's columns: each benchmark after tuning and its change."""
    if before is None or after is None:
        return {}
    figures = {}
    for name, row in side_by_side(before, after).items():
        figures[f"bench.{name}"] = row["tuned"]
        figures[f"bench.{name}.change"] = row["difference"]
    return figures
