"""metrics.jsonl: one JSON line per logging step and per evaluation."""

import json
from pathlib import Path

from tunelab.charts.train_history import read_metrics
from tunelab.train.tracking import copy_to_trackers


class MetricsLog:
    def __init__(self, path: Path, enabled: bool = True):
        self.path = path
        self.enabled = enabled

    def write(self, record: dict) -> None:
        if self.enabled:
            with self.path.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
            copy_to_trackers(record)  # train.report_to: TensorBoard, MLflow, W&B

    def truncate_after(self, epoch: int) -> None:
        """On resume, forget lines of epochs that never reached a checkpoint."""
        if self.enabled and self.path.exists():
            kept = [line for line in self.read() if line.get("epoch", 0) <= epoch]
            self.path.write_text("".join(json.dumps(line) + "\n" for line in kept))

    def read(self) -> list[dict]:
        return read_metrics(self.path)
