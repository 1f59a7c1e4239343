"""Use a finished classifier run: classify new texts, or evaluate it on a labelled file."""

import json
from pathlib import Path

from tunelab.artifacts import load_run
from tunelab.data.encode import encode_rows
from tunelab.data.prepare import check_known_labels
from tunelab.data.readers import read_rows
from tunelab.errors import TunelabError
from tunelab.files import write_whole
from tunelab.run_record import read_record
from tunelab.tasks import TASKS
from tunelab.tasks.classify.metrics import classify_with, evaluate


def load_classifier_run(run_dir: str):
    record = read_record(run_dir)  # the kind is checked before the model loads
    if not TASKS.get(record.task).labels_texts:
        raise TunelabError(
            f"{run_dir} is a {record.task} run; predict and eval need a classify run"
        )
    return load_run(run_dir)


def classify_texts(
    run_dir: str, texts: list[str], batch_size: int = 32, int8: bool = False
) -> list[dict]:
    """Label and per-class probabilities for each text."""
    model, tokenizer, record = load_classifier_run(run_dir)
    if int8:
        from tunelab.export.hf import merged_if_possible
        from tunelab.quantize import run_int8

        model = run_int8(Path(run_dir), merged_if_possible(model, record))
    return classify_with(model, tokenizer, record, texts, batch_size)


def evaluate_file(
    run_dir: str,
    data: str,
    text_field: str,
    label_field: str,
    columns: list[str] | None = None,
    batch_size: int = 32,
) -> dict:
    """Metrics of a run on a labelled file; written to RUN_DIR/eval_<file stem>.json."""
    model, tokenizer, record = load_classifier_run(run_dir)
    labels = record.labels
    rows = read_rows(data, "auto", columns, text_field, label_field)
    check_known_labels(rows, labels)
    label_ids = {label: i for i, label in enumerate(labels)}
    encoded = encode_rows(
        rows, tokenizer, label_ids, record.max_length, "truncate", record.truncation_side
    )
    metrics = evaluate(model, encoded.examples, labels, tokenizer, batch_size)
    metrics = {"file": str(data), "truncated_overlong": encoded.truncated, **metrics}
    write_whole(Path(run_dir) / f"eval_{Path(data).stem}.json", json.dumps(metrics, indent=2))
    return metrics
