"""Reading a run's metrics stream (metrics.jsonl) back: per-epoch records and per-step lines."""

import json
from pathlib import Path

METRICS_FILE = "metrics.jsonl"


def read_metrics(path: Path) -> list[dict]:
    """The records of metrics.jsonl; a line a kill cut in half (only the last can be) is left
    out, and a resume rewrites the file without it."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def read_history(run_dir: Path) -> tuple[list[dict], list[dict]]:
    """(one record per epoch's evaluation, one line per logged training step)."""
    metrics = read_metrics(Path(run_dir) / METRICS_FILE)
    history = [m for m in metrics if m.get("event") == "eval"]
    return history, [m for m in metrics if m.get("event") == "train"]
