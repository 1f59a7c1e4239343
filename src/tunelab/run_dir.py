"""The run sequence's own pieces: the run directory, the model folder a run starts from, and
train_summary.json's figures (parameters, time, tokens/s, memory)."""

import json
import resource
import shutil
import time
from pathlib import Path

import torch
from torch import nn

from tunelab.errors import TunelabError
from tunelab.export import export_run
from tunelab.models.embedded import resolve_model
from tunelab.run_record import is_finished, read_record
from tunelab.tasks import Task
from tunelab.train import FitState


def prepare_run_dir(run_dir: Path, resume: bool) -> None:
    if run_dir.exists() and any(run_dir.iterdir()) and not resume:
        raise TunelabError(
            f"run directory {run_dir} is not empty; use --resume or another output.dir"
        )
    run_dir.mkdir(parents=True, exist_ok=True)


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2))


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
        "tokens_per_s": state.tokens / state.seconds if state.seconds else None,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20
        if torch.cuda.is_available()
        else None,
        "processes": task.run.processes,
        "cache_seconds": state.cache_seconds,
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
