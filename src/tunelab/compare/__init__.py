"""tunelab compare: one base config, several method variants, same data/split/evaluation, one
leaderboard (PEFT's method_comparison harness, for any task). Variants run in order and may name
their own config, so an experiment can also be a pipeline of steps (SFT -> reward -> PPO).

With `search:` each variant's settings are first chosen on validation (compare/search.py); with
`seeds:` the chosen variant then runs once per seed, and the leaderboard shows intervals and
verdicts (report/leaderboard.py). `budget:` gives every trial and final run the same budget."""

import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from tunelab import methods, tasks  # noqa: F401 - registers the names configs are checked against
from tunelab.compare.experiment import Experiment, Search, Variant, load_experiment
from tunelab.compare.search import SearchJob, run_search, storage_url
from tunelab.config import RunConfig, load_config, split_seed
from tunelab.errors import TunelabError
from tunelab.files import write_whole
from tunelab.methods import METHODS
from tunelab.pipeline.kept_eval import KEPT_EVAL_VARIABLE
from tunelab.report.leaderboard import board_rows, write_leaderboard
from tunelab.run_record import is_finished
from tunelab.tasks import TASKS
from tunelab.train.frozen_cache import STATES_FOLDER_VARIABLE

__all__ = ["budget_overrides", "compare", "load_experiment"]


def budget_overrides(
    limit_train: int | None,
    epochs: int | None,
    max_minutes: float | None,
    max_tokens: int | None = None,
) -> list[str]:
    pairs = [
        ("data.limit_train", limit_train),
        ("train.epochs", epochs),
        ("train.max_minutes", max_minutes),
        ("train.max_tokens", max_tokens),
    ]
    return [f"{key}={value}" for key, value in pairs if value is not None]


def run_variant(
    base: Path, run_dir: Path, overrides: list[str], env: dict | None = None, overwrite=False
) -> int:
    """One run in its own process: its peak memory is its own, and a crash stays contained."""
    resume = ["--overwrite"] if overwrite else ["--resume"] if run_dir.exists() else []
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
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.call(command, env=environment, preexec_fn=dies_with_parent)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def dies_with_parent() -> None:
    """Linux: the run gets SIGKILL when compare dies (kill -9 included), so that a rerun of the
    sweep never finds an orphan still training into the folder it resumes. Elsewhere the run
    lives on and the run folder's lock refuses the second writer."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        return
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Plan:
    """One variant, resolved before anything runs (a bad override fails in the first second)."""

    variant: Variant
    config_path: Path
    overrides: list[str]  # experiment's, variant's, budget
    config: RunConfig
    search: Search | None
    env: dict[str, str]  # what every run of the experiment shares (the frozen-block states)

    def run(self, run_dir: Path, extra: list[str], env: dict | None = None, overwrite=False):
        overrides, shared = [*self.overrides, *extra], {**self.env, **(env or {})}
        return run_variant(self.config_path, run_dir, overrides, shared, overwrite)

    @property
    def trains(self) -> bool:
        return METHODS.get(self.config.method.name).trains


def has_setting(config: RunConfig, dotted: str) -> bool:
    node = config.model_dump()
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def searched(experiment: Experiment, variant: Variant, config: RunConfig) -> Search | None:
    """The variant's search, less the shared settings its method does not have (method.r means
    nothing to IA3); a setting the variant names itself must exist."""
    search = experiment.search_of(variant)
    if search is None or search.trials == 0 or not METHODS.get(config.method.name).trains:
        return None
    own = set((variant.search or {}).keys())
    for name in own & set(search.space):
        if not has_setting(config, name):
            raise TunelabError(f"variants.{variant.name}.search: {name} is not a setting here")
    space = {k: v for k, v in search.space.items() if has_setting(config, k)}
    return search.model_copy(update={"space": space}) if space else None


def plan(path: Path, experiment: Experiment, budget: list[str]) -> list[Plan]:
    plans = []
    for variant in experiment.variants:
        config_path = (path.parent / (variant.base or experiment.base)).resolve()
        overrides = [*experiment.overrides, *variant.overrides, *budget]
        config = load_config(config_path, overrides)
        search = searched(experiment, variant, config)
        if search and not TASKS.get(config.task.name).scores_on_val:
            raise TunelabError(
                f"{path}: search: task '{config.task.name}' scores only its test split; "
                "a search would tune on the test"
            )
        shared = {
            STATES_FOLDER_VARIABLE: str(Path(experiment.output_dir) / "frozen_states"),
            KEPT_EVAL_VARIABLE: str(Path(experiment.output_dir) / "eval_before"),
        }
        plans.append(Plan(variant, config_path, overrides, config, search, shared))
    return plans


def setting_of(run_dir: Path, dotted: str):
    node = yaml.safe_load((run_dir / "config.yaml").read_text())
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def chose_otherwise(run_dir: Path, chosen: list[str]) -> bool:
    """A finished run trained with other settings than the search chooses now (more trials
    found a better one)."""
    pairs = [item.partition("=") for item in chosen]
    return any(setting_of(run_dir, key) != yaml.safe_load(value) for key, _, value in pairs)


def run_final(item: Plan, run_dir: Path, extra: list[str], chosen: list[str], label: str, echo):
    """One final run (a seed of the chosen settings), unless it finished with them before;
    False when it failed."""
    again = is_finished(run_dir) and chose_otherwise(run_dir, chosen)
    if is_finished(run_dir) and not again:
        echo(f"[{label}] finished before; skipped")
        return True
    echo(f"[{label}] {'the search chose anew: trained again' if again else 'running'}")
    code = item.run(run_dir, extra, overwrite=again)
    if code != 0:
        echo(f"[{label}] failed with exit code {code}")
    return code == 0


def run_dirs(out: Path, item: Plan, seeds: list[int] | None) -> list[tuple[Path, list[str]]]:
    """The variant's final runs and their seed overrides; the split's seed stays the config's.
    Prompting trains nothing a seed could change: it runs once."""
    folder = out / item.variant.name
    if seeds is None and item.search is None:
        return [(folder, [])]  # one run, in the variant's folder
    seeds = seeds or [item.config.train.seed]  # beside the search's trials
    fixed = f"data.split_seed={split_seed(item.config)}"
    chosen = seeds if item.trains else seeds[:1]
    return [(folder / f"seed-{s}", [f"train.seed={s}", fixed]) for s in chosen]


def choose(out: Path, item: Plan, seeds: list[int] | None, echo) -> tuple[list[str], str]:
    """The variant's search on validation: the chosen overrides and a line for the notes."""
    if item.search is None:
        return [], ""
    task = TASKS.get(item.config.task.name)
    seed = seeds[0] if seeds else item.config.train.seed
    job = SearchJob(
        name=item.variant.name,
        folder=out / item.variant.name,
        storage=storage_url(out),
        overrides=[
            f"train.seed={seed}",
            f"data.split_seed={split_seed(item.config)}",
            "eval.split=val",
        ],
        higher_is_better=task.score.higher_is_better,
        metric=f"val_{task.score.field}",
        seed=seed,
        run=item.run,
    )
    record = run_search(job, item.search, echo)
    chosen = [f"{k}={v}" for k, v in record["chosen"].items()]
    states = [t["state"] for t in record["trials"]]
    seconds = sum(t["seconds"] or 0 for t in record["trials"])
    line = (
        f"- {item.variant.name}: {states.count('complete')} trials finished, "
        f"{states.count('pruned')} pruned, {states.count('fail')} failed in {seconds:.0f} s; "
        f"chose {', '.join(chosen)} (validation {record['best_value']:.4f})"
    )
    return chosen, line


def pick_variants(experiment: Experiment, only: list[str] | None, path: Path) -> Experiment:
    """`--only head,lora`: those variants of the experiment, in its order."""
    if not only:
        return experiment
    names = [v.name for v in experiment.variants]
    unknown = [name for name in only if name not in names]
    if unknown:
        raise TunelabError(f"--only: {path} has no variant '{unknown[0]}' ({', '.join(names)})")
    kept = [v for v in experiment.variants if v.name in only]
    return experiment.model_copy(update={"variants": kept})


RAN_FILE = "experiment_ran.yaml"


def check_unchanged(ran_file: Path, ran: dict) -> None:
    """A sweep resumed in the same output_dir must be the experiment it was: finished trials and
    seeds are reused, so a changed base, override, budget or variant would put runs of two
    experiments on one leaderboard. More seeds, more trials and other variants may be added."""
    if not ran_file.is_file():
        return
    try:
        before = yaml.safe_load(ran_file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        before = None
    if not isinstance(before, dict):  # not written by compare (it writes the file whole)
        raise TunelabError(
            f"{ran_file}: damaged (not the YAML compare writes); remove it only if this "
            "output_dir holds one experiment's runs"
        )
    changed = [
        key for key in ("base", "overrides", "budget_overrides") if before.get(key) != ran.get(key)
    ]
    earlier = {v["name"]: v for v in before.get("variants", [])}
    changed += [f"variant {v['name']}" for v in ran["variants"] if earlier.get(v["name"], v) != v]
    if changed:
        raise TunelabError(
            f"{ran_file.parent}: {', '.join(changed)} changed since this output_dir was used "
            "(its finished trials and seeds would be reused); use another output_dir"
        )


def compare(
    path: Path,
    budget: list[str],
    echo=print,
    seeds: list[int] | None = None,
    only: list[str] | None = None,
) -> tuple[Path, str, list[str]]:
    """Search, then run every unfinished variant and seed, then write leaderboard.{md,json} and
    plots; returns the markdown file, its table and the names of the variants that failed."""
    started = time.perf_counter()
    experiment = pick_variants(load_experiment(path), only, path)
    seeds = seeds or experiment.seeds
    budget = [*experiment.budget.overrides(), *budget]
    plans = plan(path, experiment, budget)
    out = Path(experiment.output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file by that name, a read-only folder
        raise TunelabError(f"{path}: output_dir: cannot use {out} ({exc.strerror})") from None
    # what ran, beside the results (the experiment file itself may live in this folder: the UI)
    ran = {**experiment.model_dump(exclude_none=True), "seeds": seeds, "budget_overrides": budget}
    check_unchanged(out / RAN_FILE, ran)
    write_whole(out / RAN_FILE, yaml.safe_dump(ran, sort_keys=False))
    variants, failed, notes = [], [], []
    for item in plans:
        name = item.variant.name
        chosen, note = choose(out, item, seeds, echo)
        notes += [note] if note else []
        runs = run_dirs(out, item, seeds)
        for run_dir, seed_overrides in runs:
            label = f"{name}/{run_dir.name}" if run_dir.name != name else name
            if not run_final(item, run_dir, [*chosen, *seed_overrides], chosen, label, echo):
                failed.append(label)
        variants.append((name, [run_dir for run_dir, _ in runs]))
    wall = time.perf_counter() - started
    echo(f"compare: {wall:.0f} s of wall time this call")
    if notes:
        notes = ["Settings chosen on validation (the test split unread):", "", *notes, ""]
    rows = board_rows(variants)
    return (*write_leaderboard(rows, out, notes), failed)
