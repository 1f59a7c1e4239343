"""A variant's search on validation: Optuna's seeded TPE proposes settings, each trial is a
`tunelab train` run with eval.split=val (the test split is never read), its pruner stops curves
that fall behind. The study lives in <output_dir>/search.db (SQLite): an interrupted sweep resumes
and a finished trial is never run again."""

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tunelab.compare.experiment import Search
from tunelab.errors import TunelabError
from tunelab.files import write_whole
from tunelab.run_record import is_finished, read_record
from tunelab.train.trial import PRUNED_FILE, make_pruner, trial_env

STUDY_FILE = "search.db"
FAILED_RUN = "failed_run"  # a trial's mark that its run exited with an error (no kill)


class TrialFailed(Exception):
    """A trial's run exited with an error: the trial is failed, the sweep goes on."""


@dataclass
class SearchJob:
    """What one variant's sweep needs from compare."""

    name: str
    folder: Path  # <output_dir>/<variant>
    storage: str  # sqlite URL of the experiment's study file
    overrides: list[str]  # beside the variant's own: the trial seed, the split, eval.split=val
    higher_is_better: bool
    metric: str  # the per-epoch validation figure the pruner follows (val_accuracy)
    seed: int  # the sampler's seed: the same proposals on a re-run from scratch
    run: Callable[[Path, list[str], dict], int]  # (run_dir, overrides, env) -> exit code


def storage_url(out: Path) -> str:
    return f"sqlite:///{(out / STUDY_FILE).resolve()}"


def open_study(job: SearchJob, search: Search):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url, direction = job.storage, "maximize" if job.higher_is_better else "minimize"
    study = optuna.create_study(
        study_name=job.name,
        storage=url,
        load_if_exists=True,
        direction=direction,
        # create_study needs a sampler; run_search seeds a fresh one before every trial
        sampler=trial_sampler(job, search, []),
        pruner=make_pruner(search.prune),
    )
    space = json.dumps({k: v.model_dump() for k, v in sorted(search.space.items())})
    saved = study.user_attrs.get("space")
    if saved is None:
        study.set_user_attr("space", space)
    elif saved != space:
        raise TunelabError(
            f"{job.name}: search: the searched settings changed since the study in "
            f"{job.storage.removeprefix('sqlite:///')} began; use another output_dir"
        )
    return study


def ended_count(trials: list) -> int:
    """Trials that ended on their own: finished, pruned, or failed by their run (not those a kill
    interrupted, which run again)."""
    return sum(t.state.name in ("COMPLETE", "PRUNED") or FAILED_RUN in t.user_attrs for t in trials)


def startup_trials(search: Search) -> int:
    return min(4, search.trials)


def trial_sampler(job: SearchJob, search: Search, trials: list):
    """The sampler that proposes the next trial after the spread-out first ones, seeded by the
    number of trials that ended on their own: a proposal then depends on the seed and that
    history only, so a sweep killed and resumed (its interrupted trial queued again) proposes
    what an uninterrupted one would, and a failed trial is not proposed again. One seeded sampler
    for the whole sweep would start its random draws over on every resume."""
    import optuna

    seed = job.seed + ended_count(trials)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials(search))


def spread_point(search: Search, seed: int, index: int) -> dict:
    """The index-th of the first trials' settings: a scrambled Sobol point (scipy), so that two
    trials of a log range try one rate in each half of it where independent random draws (TPE's
    start) may land side by side (4.1e-4 and 4.4e-4 of [1e-4, 3e-3] did). Written here because
    Optuna's QMCSampler keeps its place in the sequence in the study, moved by a killed trial too,
    and a resumed sweep must propose what an uninterrupted one would."""
    from scipy.stats import qmc

    names = list(search.space)
    sobol = qmc.Sobol(d=len(names), scramble=True, seed=seed)
    point = sobol.random_base2(max(1, (startup_trials(search) - 1).bit_length()))[index]
    return {name: search.space[name].at(u) for name, u in zip(names, point, strict=True)}


def queue_spread_point(study, trials: list, job: SearchJob, search: Search) -> None:
    """Queue the next first-trial settings, unless an interrupted trial's are queued to run."""
    from optuna.trial import TrialState

    ended = ended_count(trials)
    waiting = any(t.state == TrialState.WAITING for t in trials)
    if ended < startup_trials(search) and not waiting:
        study.enqueue_trial(spread_point(search, job.seed, ended))


def trial_dir(job: SearchJob, number: int) -> Path:
    return job.folder / "search" / f"trial-{number}"


def trial_value(run_dir: Path, higher_is_better: bool) -> float:
    """The finished trial's validation score; TrialPruned when its pruner stopped it. The study's
    direction is the task's first headline's; a task whose headline falls back to another figure
    (sft without generated answers: perplexity) would be ranked backwards, so it stops."""
    import optuna

    if (run_dir / PRUNED_FILE).is_file():
        raise optuna.TrialPruned()
    summary = json.loads((run_dir / "train_summary.json").read_text())
    if summary.get("scored_on") != "val":
        raise TunelabError(f"{run_dir}: a search trial must be scored on validation")
    if summary.get("higher_is_better", higher_is_better) != higher_is_better:
        better = "higher" if higher_is_better else "lower"
        raise TunelabError(
            f"{run_dir}: the search ranks a figure where {better} is better, but this trial's "
            f"score is {summary['score_name']}; for sft, set eval.generate_limit above 0"
        )
    return summary["score"]


def drop_weights(run_dir: Path) -> None:
    """A trial keeps its figures, not its weights: a sweep of full fine-tunes would fill a disk."""
    if is_finished(run_dir):
        shutil.rmtree(run_dir / read_record(run_dir).artifact, ignore_errors=True)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)


def settle_interrupted(study, job: SearchJob, echo) -> None:
    """Trials left running by a killed sweep: one whose run finished is told its value (never
    run again); the others are marked failed and their settings queued to run first."""
    import optuna
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        run_dir = trial_dir(job, trial.number)
        if is_finished(run_dir):
            try:
                study.tell(trial.number, trial_value(run_dir, job.higher_is_better))
            except optuna.TrialPruned:
                study.tell(trial.number, state=TrialState.PRUNED)
            echo(f"[{job.name}] trial {trial.number} had finished; its score kept")
        else:
            study.tell(trial.number, state=TrialState.FAIL)
            study.enqueue_trial(trial.params)
            echo(f"[{job.name}] trial {trial.number} was interrupted; its settings run again")


def objective(job: SearchJob, search: Search, echo) -> Callable:
    def run_trial(trial) -> float:
        values = {name: param.suggest(trial, name) for name, param in search.space.items()}
        run_dir = trial_dir(job, trial.number)
        shown = ", ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items()
        )
        echo(f"[{job.name}] trial {trial.number}: {shown}")
        env = trial_env(job.storage, job.name, trial._trial_id, job.metric, search.prune)
        code = job.run(run_dir, [*job.overrides, *(f"{k}={v}" for k, v in values.items())], env)
        if code != 0:
            trial.set_user_attr(FAILED_RUN, code)
            raise TrialFailed(f"trial {trial.number} exited with code {code}")
        try:
            return trial_value(run_dir, job.higher_is_better)
        finally:
            drop_weights(run_dir)

    return run_trial


def finished(study) -> list:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def run_search(job: SearchJob, search: Search, echo=print) -> dict:
    """Run the variant's missing trials; returns the chosen settings and the sweep's record
    (written to <variant>/search.json)."""
    study = open_study(job, search)
    settle_interrupted(study, job, echo)
    done = len(finished(study))
    started = time.perf_counter()
    if done:
        echo(f"[{job.name}] {done} of {search.trials} trials finished before; not run again")
    for _ in range(max(0, search.trials - done)):
        trials = study.get_trials(deepcopy=False)  # one read of the study for both
        queue_spread_point(study, trials, job, search)
        study.sampler = trial_sampler(job, search, trials)
        study.optimize(objective(job, search, echo), n_trials=1, catch=(TrialFailed,))
    complete = [t for t in finished(study) if t.value is not None and t.state.name == "COMPLETE"]
    if not complete:
        raise TunelabError(f"{job.name}: no search trial finished (see {job.folder / 'search'})")
    best = study.best_trial
    record = {
        "variant": job.name,
        "metric": f"validation {job.metric.removeprefix('val_')}",
        "chosen": best.params,
        "best_trial": best.number,
        "best_value": best.value,
        "seconds_this_call": time.perf_counter() - started,
        "trials": [
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "value": t.value,
                "params": t.params,
                "last_epoch_reported": max(t.intermediate_values, default=None),
                "seconds": (t.datetime_complete - t.datetime_start).total_seconds()
                if t.datetime_complete and t.datetime_start
                else None,
            }
            for t in study.get_trials(deepcopy=False)
        ],
    }
    write_whole(job.folder / "search.json", json.dumps(record, indent=2))
    return record
