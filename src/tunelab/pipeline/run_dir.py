"""The run sequence's own pieces: the run directory, the model folder a run starts from, and
train_summary.json's figures (parameters, time, tokens/s, memory)."""

import hashlib
import json
import os
import random
import resource
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import yaml
from accelerate.utils import set_seed
from torch import nn

from tunelab.config import RunConfig
from tunelab.errors import TunelabError
from tunelab.export.hf import export_run
from tunelab.files import write_whole
from tunelab.hardware import machine_record
from tunelab.models.embedded import resolve_model
from tunelab.run_record import RUN_INFO, is_finished, read_record
from tunelab.tasks import Task
from tunelab.train import TRAINERS, FitState

# Settings a resume may change: how long to train, not what is trained.
RESUMABLE_CHANGES = {
    "train.epochs",
    "train.max_minutes",
    "train.max_tokens",
    "train.early_stopping_patience",
}


def flat(section: dict, prefix: str = "") -> dict:
    items = {}
    for key, value in section.items():
        name = f"{prefix}{key}"
        items.update(flat(value, name + ".") if isinstance(value, dict) else {name: value})
    return items


def config_changes(run_dir: Path, config: RunConfig) -> list[str]:
    """`key (saved -> now)` for each setting of config.yaml that this config changes."""
    saved_path = run_dir / "config.yaml"
    try:
        saved = flat(yaml.safe_load(saved_path.read_text()) or {})
    except (OSError, ValueError, yaml.YAMLError):
        return []  # no usable config.yaml: nothing to hold the resume to
    now = flat(config.model_dump(mode="json"))
    keys = sorted((set(saved) | set(now)) - RESUMABLE_CHANGES - {"output.dir"})
    return [f"{k} ({saved.get(k)!r} -> {now.get(k)!r})" for k in keys if saved.get(k) != now.get(k)]


# Written first into every run directory: --overwrite deletes only folders that carry it (or a
# finished run's record), never a data folder, a model folder or the working folder.
RUN_MARK = ".tunelab-run"


def is_run_dir(folder: Path) -> bool:
    return (folder / RUN_MARK).is_file() or (folder / RUN_INFO).is_file()


def check_overwrite(run_dir: Path) -> None:
    """--overwrite replaces a run directory and nothing else."""
    if run_dir.is_symlink():
        raise TunelabError(
            f"output.dir: {run_dir} is a symbolic link; --overwrite deletes only a run "
            "directory itself, name it directly"
        )
    here = Path.cwd().resolve()
    if run_dir.resolve() in (here, *here.parents):
        raise TunelabError(
            f"output.dir: {run_dir} is the working folder or holds it; --overwrite will not "
            "delete it; name a folder for the run"
        )
    if not is_run_dir(run_dir):
        raise TunelabError(
            f"output.dir: {run_dir} holds files but is not a tunelab run directory (no {RUN_INFO} "
            f"or {RUN_MARK}); --overwrite deletes only run directories, so nothing was deleted: "
            "choose another output.dir"
        )


DATA_FILES = "data_files.json"  # what the run read, to hold a resume to the same data


def fingerprint(path: Path) -> str:
    """A file's SHA-256 (streamed), or a folder's listing of names and sizes (a pretrain corpus
    of many files is not read twice)."""
    digest = hashlib.sha256()
    if path.is_dir():
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f"{item.relative_to(path)}\0{item.stat().st_size}\n".encode())
        return digest.hexdigest()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def data_fingerprints(config: RunConfig) -> dict[str, str]:
    data = config.data
    named = [data.path, data.val_path, data.test_path, *(m.path for m in data.mix)]
    paths = [Path(p) for p in named if p and not p.startswith("builtin:")]
    return {str(p): fingerprint(p) for p in paths if p.exists()}


def data_changes(run_dir: Path, config: RunConfig) -> list[str]:
    """The data files whose content differs from what the run read when it started."""
    try:
        saved = json.loads((run_dir / DATA_FILES).read_text())
    except (OSError, ValueError):
        return []  # a run stopped before it read its data: nothing to hold the resume to
    now = data_fingerprints(config)
    return sorted(path for path, digest in saved.items() if now.get(path) != digest)


def check_run_dir(run_dir: Path, config: RunConfig, resume: bool, overwrite: bool) -> None:
    """Read-only, before anything is written: a run directory in use is only continued
    (--resume, with the config it started with) or replaced (--overwrite, a run directory
    only)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise TunelabError(f"output.dir: {run_dir} is a file, not a folder")
    # a run that stopped before writing anything left only its mark: nothing to keep
    in_use = run_dir.exists() and any(p.name != RUN_MARK for p in run_dir.iterdir())
    if in_use and overwrite:
        check_overwrite(run_dir)
    if in_use and not (resume or overwrite):
        raise TunelabError(
            f"run directory {run_dir} is not empty; use --resume, --overwrite or another output.dir"
        )
    changes = config_changes(run_dir, config) if in_use and resume else []
    if changes:
        raise TunelabError(
            f"--resume: the config differs from {run_dir / 'config.yaml'} in "
            f"{'; '.join(changes[:3])}{' ...' if len(changes) > 3 else ''}; resume with the "
            "same settings, or use --overwrite or another output.dir"
        )
    changed = data_changes(run_dir, config) if in_use and resume else []
    if changed:
        raise TunelabError(
            f"--resume: {changed[0]} changed since the run started (its content differs from "
            "what the run trained on); resume with the same data, or use --overwrite"
        )
    done = epochs_done(run_dir) if in_use and resume else 0
    if done > config.train.epochs:  # the trained epochs would be kept and called fewer
        raise TunelabError(
            f"--resume: {run_dir} has trained {done} epochs; train.epochs={config.train.epochs} "
            f"cannot take them back; use --overwrite to train {config.train.epochs} from the start"
        )


def epochs_done(run_dir: Path) -> int:
    """The epochs a run has evaluated, read from its log (a line a kill cut is passed over)."""
    path, done = run_dir / "metrics.jsonl", 0
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("event") == "eval":
            done = max(done, int(event.get("epoch") or 0))
    return done


def make_run_dir(run_dir: Path, overwrite: bool) -> None:
    """Once the run's inputs have been checked: empty it (--overwrite) and create it."""
    if overwrite and is_run_dir(run_dir) and not run_dir.is_symlink():
        shutil.rmtree(run_dir)  # check_overwrite refused any other folder that holds files
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TunelabError(f"output.dir: cannot create {run_dir} ({exc.strerror})") from None
    if not os.access(run_dir, os.W_OK):
        raise TunelabError(f"output.dir: {run_dir} is not writable")
    (run_dir / RUN_MARK).touch()


def finished_summary(run_dir: Path, config: RunConfig) -> dict | None:
    """A finished run's train_summary.json when --resume has nothing left to train."""
    summary_path = run_dir / "train_summary.json"
    if not (is_finished(run_dir) and summary_path.is_file()):
        return None
    summary = json.loads(summary_path.read_text())
    saved = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    if saved.get("train", {}).get("epochs") != config.train.epochs:
        return None  # more (or fewer) epochs asked for: the trainer continues from `last`
    return summary


def write_json(path: Path, data: dict) -> None:
    """Written beside and renamed into place: a kill never leaves half a file."""
    write_whole(path, json.dumps(data, indent=2))


def count_parameters(model) -> dict:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": total, "trainable_pct": 100.0 * trainable / total}


def run_summary(task: Task, model: nn.Module, state: FitState, started: float) -> dict:
    """train_summary.json fields common to all tasks; each task adds its scores."""
    return {
        "method": task.run.method.name,
        "task": task.name,
        "model": task.config.model.name,
        "parameters": count_parameters(model),
        "epochs_run": state.epoch,
        "best_epoch": state.best_epoch,
        "train_seconds": state.seconds,
        "wall_seconds": time.perf_counter() - started,
        "trained_tokens": state.tokens,
        "tokens_per_s": state.tokens / state.seconds if state.seconds else None,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20
        if torch.cuda.is_available()
        else None,
        "processes": task.run.processes,
        "cache_seconds": state.cache_seconds,
        "precision": TRAINERS.get(task.trainer).precision(task.config.train).record(),
        "machine": machine_record(),
    }


def start_model(name: str) -> str:
    """The folder a run starts from: an embedded name, a folder or Hub id, or a finished tunelab
    run (its adapter merged into its base once, kept in RUN/merged) - so PPO can start from SFT."""
    run_dir = Path(name)
    if not is_finished(run_dir):
        return resolve_model(name)
    merged = run_dir / "merged"
    if not (merged / "config.json").is_file():
        record = read_record(run_dir)
        if not record.answers_questions:
            raise TunelabError(f"model.name: {name} is a {record.task} run; start from an sft run")
        shutil.rmtree(merged, ignore_errors=True)
        if record.artifact == "adapter":
            export_run(run_dir, merged, merge=True)
        else:
            shutil.copytree(run_dir / record.artifact, merged)
    return str(merged)


@contextmanager
def own_random_state(seed: int = 0):
    """An evaluation draws from a random state of its own, seeded alike in every run, and leaves
    the run's as it found it (torch, Python, NumPy; CUDA where there is one): a DataLoader draws
    a seed even when it does not shuffle, so otherwise an evaluation that was skipped (a resume,
    figures kept from another run) would shift the new weights' initialisation and the training
    order, and figures drawn under one run's seed would be kept for another's."""
    state = (torch.get_rng_state(), random.getstate(), np.random.get_state())
    devices = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    set_seed(seed)
    try:
        yield
    finally:
        torch.set_rng_state(state[0])
        random.setstate(state[1])
        np.random.set_state(state[2])
        if devices is not None:
            torch.cuda.set_rng_state_all(devices)
