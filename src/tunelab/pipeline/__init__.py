"""pipeline.run(config): the one run sequence of every task.

config -> data -> model + method -> evaluate before -> train -> evaluate after -> summary ->
artefact -> run record -> report. The task (tasks/) supplies each stage's content and names its
trainer (train/); the CLI, compare and the UI call this and add nothing of their own."""

import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from accelerate.utils import set_seed
from torch import nn

from tunelab import methods, tasks  # noqa: F401 - importing registers every method and task
from tunelab.artifacts import save_artifact
from tunelab.bench.cache import keep, read_kept
from tunelab.bench.flow import (
    bench_figures,
    bench_settings,
    local_folder,
    score_model,
    write_bench,
)
from tunelab.config import RunConfig, load_config, save_config
from tunelab.doctor import Finding, fatal_line, preflight, run_checks
from tunelab.errors import DataError, TunelabError, notice
from tunelab.files import held_alone
from tunelab.methods import METHODS
from tunelab.models.anatomy import describe
from tunelab.models.loader import load_tokenizer
from tunelab.pipeline.kept_eval import kept_before_path
from tunelab.pipeline.run_dir import (
    DATA_FILES,
    check_run_dir,
    data_fingerprints,
    finished_summary,
    make_run_dir,
    own_random_state,
    run_summary,
    start_model,
    write_json,
)
from tunelab.report import write_report
from tunelab.run_record import RunRecord, base_fingerprint, write_record
from tunelab.runtime import process_state
from tunelab.tasks import TASKS, RunContext, Task, check_method, check_read_settings
from tunelab.train import TRAINERS, FitState, check_settings
from tunelab.train.tracking import tracked

__all__ = ["diagnose", "load_config", "open_task", "run"]


def open_task(config: RunConfig, resume: bool = False) -> Task:
    """The task of a config, its run context made: model folder, tokenizer, checks passed."""
    task_class, method = TASKS.get(config.task.name), METHODS.get(config.method.name)
    check_method(task_class, method)
    check_settings(TRAINERS.get(task_class.trainer), config.train, task_class)
    check_read_settings(task_class, config)
    if config.eval.split == "val" and not task_class.scores_on_val:
        raise TunelabError(f"eval.split: task '{task_class.name}' scores its test split only")
    set_seed(config.train.seed)
    state = process_state()
    with state.main_process_first():  # the main process converts an embedded model once
        model_path = start_model(config.model.name)
    tokenizer = load_tokenizer(model_path, config.model.trust_remote_code)
    run = RunContext(config, method, Path(config.output.dir), resume, model_path, tokenizer)
    return task_class(run)


def diagnose(config: RunConfig) -> tuple[list[Finding], dict]:
    """`tunelab doctor`: the run sequence up to the prepared data (no weights loaded), then every
    check of the doctor; data that reads but cannot train is a fatal finding, not an error."""
    task = open_task(config)
    try:
        summary = task.prepare()
    except DataError as exc:  # bad rows: each one a finding (train names the first)
        return [Finding("data", "fatal", str(problem)) for problem in exc.problems], {}
    except TunelabError as exc:  # an empty split, every answer cut by max_length
        return [Finding("data", "fatal", str(exc))], {}
    return run_checks(task, summary), summary


def fit(task: Task, model: nn.Module) -> tuple[nn.Module, FitState]:
    """The method adapts the model, then the task's trainer fits it; prompting trains nothing."""
    method, settings = task.run.method, task.config.method
    if not method.trains:
        model.requires_grad_(False)  # a prompted model has no trainable parameter
        return model, FitState()
    model = method.apply(model, settings, describe(model))
    config, run = task.config, task.run
    with tracked(config.train.report_to, run.run_dir, config.model_dump(mode="json"), run.is_main):
        return TRAINERS.get(task.trainer).fit(task, model)


def local_or_hub(model_path: str) -> str:
    """A local folder as an absolute path: later commands find it from any working folder."""
    return str(Path(model_path).resolve()) if Path(model_path).is_dir() else model_path


def record_of(task: Task) -> RunRecord:
    run, config = task.run, task.config
    return RunRecord(
        task=task.name,
        method=run.method.name,
        model=config.model.name,
        base_model=local_or_hub(run.model_path),
        base_fingerprint=base_fingerprint(run.model_path),
        model_kind=task.model_kind,
        artifact=run.method.artifact,
        method_settings=config.method.model_dump(),
        task_settings=config.task.model_dump(),
        max_length=config.data.max_length,
        truncation_side=config.data.truncation_side,
        padding_side=task.tokenizer.padding_side,
        **task.record(),
    )


def evaluated(task: Task, model: nn.Module) -> dict:
    """The task's evaluation under its own random state (pipeline/run_dir.own_random_state)."""
    with own_random_state():
        return task.evaluate(model)


def evaluate_before(task: Task, model: nn.Module) -> dict:
    """The before-evaluation, written at once; a resume reads it back instead of redoing it, and
    a base evaluated alike by an earlier run (pipeline/kept_eval.py) is read from where its
    figures were kept."""
    path = task.run.run_dir / "eval_before.json"
    before = read_kept(path) if task.run.resume else None  # damaged or missing: evaluated again
    kept = kept_before_path(task, model) if before is None else None
    if kept is not None and (before := read_kept(kept)) is not None:
        notice(f"the base's figures before training: kept from an earlier run ({kept.name})")
    if before is None:
        before = evaluated(task, model)
        if kept is not None:
            keep(kept, before)
    if task.run.is_main:
        write_json(path, before)
    return before


def train_side_run(task: Task) -> None:
    """The task's side run (an sft run's scope guard) through this same sequence, in its own
    folder inside the run directory; on resume a finished one is reused."""
    side = task.side_run()
    if side is not None:
        run(side, resume=True)
        task.use_side_run(Path(side.output.dir))


@contextmanager
def removed_on_failure(run_dir: Path, created: bool):
    """A run folder this run created goes again when the run fails before it trains (bad data,
    a fatal finding, a model that does not load): a failed start leaves nothing behind. A run
    that fails while training keeps its folder (its log and checkpoints resume it)."""
    try:
        yield
    except BaseException:
        if created:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def start_run(task: Task, overwrite: bool):
    """The run folder, the prepared data (checked), the side run and the loaded model."""
    run_dir, config, main = task.run.run_dir, task.config, task.run.is_main
    if main:
        make_run_dir(run_dir, overwrite)
    process_state().wait_for_everyone()
    data_summary = task.prepare()
    stop = fatal_line(preflight(task, data_summary))
    if stop:
        raise TunelabError(stop)
    train_side_run(task)
    model = task.load_model()
    if main:
        save_config(config, run_dir / "config.yaml")
        write_json(run_dir / "data_summary.json", data_summary)
        write_json(run_dir / DATA_FILES, data_fingerprints(config))
    return model


def run(config: RunConfig, resume: bool = False, overwrite: bool = False) -> dict:
    """Train and evaluate one run; everything lands in config.output.dir, which one process (the
    first of a distributed run) holds while it runs: a second `train` of the same folder (the UI's
    resume of a running run, compare rerun while a killed sweep's trial lives on) is refused."""
    run_dir = Path(config.output.dir)
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun's other processes: the first holds it
        return run_held(config, run_dir, resume, overwrite)
    with held_alone(run_dir, "being trained"):
        return run_held(config, run_dir, resume, overwrite)


def run_held(config: RunConfig, run_dir: Path, resume: bool, overwrite: bool) -> dict:
    check_run_dir(run_dir, config, resume, overwrite)
    if resume and (summary := finished_summary(run_dir, config)) is not None:
        notice(f"{run_dir} finished before; nothing to resume (--overwrite trains it again)")
        return summary
    task = open_task(config, resume and not overwrite)
    main = task.run.is_main
    benchmarks = bench_settings(config, task.model_kind) if main else None
    with removed_on_failure(run_dir, created=main and not run_dir.exists()):
        model = start_run(task, overwrite)
        before = evaluate_before(task, model)
        base = local_folder(task.run.model_path) if benchmarks is not None else None
        bench_before = score_model(benchmarks, model, task.tokenizer, base)
    started = time.perf_counter()
    model, state = fit(task, model)
    after = evaluated(task, model) if task.run.method.trains else before
    bench_after = (
        score_model(benchmarks, model, task.tokenizer) if task.run.method.trains else bench_before
    )
    summary = {
        **run_summary(task, model, state, started),
        **task.scores(before, after),
        **bench_figures(bench_before, bench_after),
    }
    if main:
        write_json(run_dir / "eval_after.json", after)
        write_json(run_dir / "train_summary.json", summary)
        if benchmarks is not None:
            write_bench(run_dir, benchmarks, bench_before, bench_after)
        artifact = task.run.method.artifact
        save_artifact(model, task.tokenizer, run_dir / artifact, artifact)
        write_record(run_dir, record_of(task))
        write_report(run_dir)
    process_state().wait_for_everyone()
    return summary
