"""What the Runs page shows, read from run folders and job files only: each run's status, its
live progress from `metrics.jsonl`, and its headline figure once finished."""

import json
import math
import time
from pathlib import Path

import yaml

from tunelab.run_record import is_finished, read_record
from tunelab.ui.jobs import is_running, last_error, read_job
from tunelab.ui.workspace import Workspace


def read_events(run_dir: Path) -> list[dict]:
    """metrics.jsonl's events; a line being written as we read is skipped."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def status_of(workspace: Workspace, kind: str, name: str, done: bool) -> tuple[str, str | None]:
    """running, finished (`done`: what the command leaves behind is there), stopped (by the
    user; resumable), failed (with its one-line error), or new (a config, nothing started)."""
    job = read_job(workspace, kind, name)
    if is_running(job):
        return "running", None
    if job and job.get("stopped"):
        return "stopped", None
    if done:
        return "finished", None
    if job:
        return "failed", last_error(workspace, kind, name) or "the command ended without finishing"
    return "new", None


def progress(run_dir: Path, events: list[dict], started: float | None) -> dict:
    """Epoch, step, tokens/s and time left, estimated from the steps done so far."""
    train = [e for e in events if e.get("event") == "train"]
    if not train:
        return {}
    last = train[-1]
    config = (
        yaml.safe_load((run_dir / "config.yaml").read_text())
        if (run_dir / "config.yaml").is_file()
        else {}
    )
    epochs = (config.get("train") or {}).get("epochs")
    steps_per_epoch = max(e["step"] for e in train if e["epoch"] == train[0]["epoch"])
    done = {
        "epoch": last["epoch"],
        "epochs": epochs,
        "step": last["step"],
        "tokens_per_s": last.get("tokens_per_s"),
    }
    if epochs and started and len({e["epoch"] for e in train}) > 1:
        total = steps_per_epoch * epochs
        elapsed = time.time() - started
        done["seconds_left"] = max(0.0, elapsed / last["step"] * (total - last["step"]))
    return done


def curves(events: list[dict]) -> dict:
    """The loss series the page plots: training loss by step, validation loss by epoch."""
    train = [
        [e["step"], e["loss"]]
        for e in events
        if e.get("event") == "train" and is_number(e.get("loss"))
    ]
    val = [
        [e["epoch"], e["val_loss"]]
        for e in events
        if e.get("event") == "eval" and is_number(e.get("val_loss"))
    ]
    return {"train_loss": train, "val_loss": val}


def is_number(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def headline(run_dir: Path) -> dict:
    """The finished run's summary (train_summary.json): its figures before and after."""
    path = run_dir / "train_summary.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def run_names(workspace: Workspace) -> list[str]:
    """Runs with a folder, a job or a config, newest first."""
    names = {p.name for p in (workspace.root / "runs").iterdir() if p.is_dir()}
    names |= {p.stem for p in (workspace.root / "configs").glob("*.yaml")}
    stamp = {n: latest_change(workspace, n) for n in names}
    return sorted(names, key=lambda n: -stamp[n])


def latest_change(workspace: Workspace, name: str) -> float:
    paths = [
        workspace.run_dir(name),
        workspace.config_file(name),
        workspace.root / "jobs" / "train" / f"{name}.json",
    ]
    return max((p.stat().st_mtime for p in paths if p.exists()), default=0.0)


def run_view(workspace: Workspace, name: str) -> dict:
    """Everything the Runs page shows of one run."""
    run_dir = workspace.run_dir(name)
    status, error = status_of(workspace, "train", name, is_finished(run_dir))
    job = read_job(workspace, "train", name) or {}
    events = read_events(run_dir)
    record = read_record(run_dir) if status == "finished" else None
    return {
        "name": name,
        "task": record.task if record else None,
        "abilities": record.abilities if record else [],
        "status": status,
        "error": error,
        "progress": progress(run_dir, events, job.get("started")) if status == "running" else {},
        "curves": curves(events),
        "summary": headline(run_dir),
        "report": f"/files/runs/{name}/report.html"
        if (run_dir / "report.html").is_file()
        else None,
        "resumable": status in ("stopped", "failed")
        and (run_dir / "checkpoints" / "last").is_dir(),
    }
