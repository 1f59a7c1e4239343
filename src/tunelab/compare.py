"""tunelab compare: one base config, several method variants, same data/split/seed/evaluation,
one leaderboard (PEFT's method_comparison harness, for any task). Variants run in order and may
name their own config, so an experiment can also be a pipeline of steps (SFT -> reward -> PPO)."""

import os
import subprocess
import sys
from pathlib import Path

import yaml
from pydantic import Field, ValidationError

from tunelab.errors import TunelabError
from tunelab.report.leaderboard import collect_row, write_leaderboard
from tunelab.run_record import is_finished
from tunelab.settings import StrictModel
from tunelab.yaml_files import read_yaml


class Variant(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Run folder name and table row.")
    overrides: list[str] = Field(
        default_factory=list, description="Dotted overrides: method.name=lora"
    )
    base: str | None = Field(
        None, description="This variant's own config (steps of a pipeline such as RLHF)."
    )


class Experiment(StrictModel):
    base: str = Field(description="Base run config, relative to the experiment file.")
    output_dir: str = Field(description="Each variant runs in <output_dir>/<name>.")
    overrides: list[str] = Field(default_factory=list, description="Applied to every variant.")
    variants: list[Variant] = Field(min_length=1)


def load_experiment(path: Path) -> Experiment:
    try:
        experiment = Experiment.model_validate(read_yaml(path))
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise TunelabError(f"{path}: {field}: {first['msg']}") from None
    names = [variant.name for variant in experiment.variants]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise TunelabError(f"{path}: variants: the name '{twice[0]}' is used twice")
    return experiment


def budget_overrides(
    limit_train: int | None, epochs: int | None, max_minutes: float | None
) -> list[str]:
    pairs = [
        ("data.limit_train", limit_train),
        ("train.epochs", epochs),
        ("train.max_minutes", max_minutes),
    ]
    return [f"{key}={value}" for key, value in pairs if value is not None]


def run_variant(base: Path, run_dir: Path, overrides: list[str]) -> int:
    """One variant in its own process: its peak memory is its own, and a crash stays contained."""
    resume = ["--resume"] if run_dir.exists() else []
    command = [
        sys.executable,
        "-m",
        "tunelab.cli",
        "train",
        str(base),
        *overrides,
        f"output.dir={run_dir}",
        *resume,
    ]
    return subprocess.call(command, env=dict(os.environ, PYTHONUNBUFFERED="1"))


def compare(path: Path, budget: list[str], echo=print) -> tuple[Path, str, list[str]]:
    """Run every unfinished variant, then write leaderboard.{md,json} and plots; returns the
    markdown file, its table and the names of the variants that failed."""
    experiment = load_experiment(path)
    base = (path.parent / experiment.base).resolve()
    out = Path(experiment.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "experiment.yaml").write_text(
        yaml.safe_dump({**experiment.model_dump(), "budget": budget}, sort_keys=False)
    )
    rows, failed = [], []
    for variant in experiment.variants:
        run_dir = out / variant.name
        if is_finished(run_dir):
            echo(f"[{variant.name}] finished before; skipped")
        else:
            echo(f"[{variant.name}] running")
            config = (path.parent / variant.base).resolve() if variant.base else base
            code = run_variant(
                config, run_dir, [*experiment.overrides, *variant.overrides, *budget]
            )
            if code != 0:
                echo(f"[{variant.name}] failed with exit code {code}")
                failed.append(variant.name)
        rows.append(collect_row(variant.name, run_dir))
    return (*write_leaderboard(rows, out), failed)
