"""train.report_to: every metrics.jsonl record also goes to TensorBoard, MLflow or W&B, through
Accelerate's tracker classes (the same ones `Accelerator(log_with=...)` builds), with the resolved
config as the run's parameters. metrics.jsonl stays the source of truth for reports, compare and
the UI; the trackers are copies for the user's dashboards. One object serves tunelab's loop, the
TRL trainers and PPO, because all three write through MetricsLog.

Where they write: TensorBoard event files under RUN/tracking/tensorboard; MLflow to
$MLFLOW_TRACKING_URI when it is set (a server), else to a local store under RUN/tracking/mlruns;
W&B as its own environment says (WANDB_MODE=offline keeps it on disk)."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

TRACKING_DIR = "tracking"
LOCAL_MLFLOW = "mlruns"


def flat_params(values: dict, prefix: str = "") -> dict[str, str | int | float | bool]:
    """`train.lr`-style keys with scalar values: what trackers take as parameters."""
    flat: dict[str, str | int | float | bool] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flat_params(value, f"{name}."))
        elif isinstance(value, str | int | float | bool):
            flat[name] = value
        elif value is not None:
            flat[name] = str(value)
    return flat


def numeric_values(record: dict) -> dict[str, float]:
    """A metrics.jsonl record's numbers, less its position (event, epoch, step)."""
    skipped = {"event", "epoch", "step"}
    return {
        k: float(v)
        for k, v in record.items()
        if k not in skipped and isinstance(v, int | float) and not isinstance(v, bool)
    }


def start_tracker(name: str, run_dir: Path, run_name: str):
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS

    folder = run_dir / TRACKING_DIR
    if name == "tensorboard":
        tracker = LOGGER_TYPE_TO_CLASS[name](run_name, folder / "tensorboard")
    elif name == "mlflow":
        if "MLFLOW_TRACKING_URI" not in os.environ:
            import mlflow

            # MLflow 3 refuses a file store unless asked, and its SQL store needs the server
            # extras: a folder keeps laptops and tests offline; a server is one variable away
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            mlflow.set_tracking_uri((folder / LOCAL_MLFLOW).resolve().as_uri())
        tracker = LOGGER_TYPE_TO_CLASS[name](run_name, run_name=run_name)
    else:
        tracker = LOGGER_TYPE_TO_CLASS[name](run_name, dir=str(folder))
    tracker.start()
    return tracker


class Trackers:
    """The trackers named in train.report_to, started with the run's resolved config."""

    def __init__(self, names: list[str], run_dir: Path, config: dict):
        run_name = Path(run_dir).resolve().name
        self.trackers = [start_tracker(name, run_dir, run_name) for name in names]
        params = flat_params(config)
        for tracker in self.trackers:
            tracker.store_init_configuration(params)

    def log(self, record: dict) -> None:
        """One metrics.jsonl record, under its event's prefix (train/loss, eval/val_loss), at
        its step (or its epoch, for per-epoch records without one)."""
        values = numeric_values(record)
        if not values:
            return
        prefix = record.get("event", "metrics")
        step = record.get("step", record.get("epoch"))
        named = {f"{prefix}/{k}": v for k, v in values.items()}
        for tracker in self.trackers:
            tracker.log(named, step=step)

    def finish(self) -> None:
        for tracker in self.trackers:
            tracker.finish()


ACTIVE: ContextVar[Trackers | None] = ContextVar("tunelab_trackers", default=None)


@contextmanager
def tracked(names: list[str], run_dir: Path, config: dict, enabled: bool) -> Iterator[None]:
    """While inside, MetricsLog copies each record to the trackers named (main process only)."""
    if not names or not enabled:
        yield
        return
    trackers = Trackers(names, run_dir, config)
    token = ACTIVE.set(trackers)
    try:
        yield
    finally:
        ACTIVE.reset(token)
        trackers.finish()


def copy_to_trackers(record: dict) -> None:
    trackers = ACTIVE.get()
    if trackers is not None:
        trackers.log(record)
