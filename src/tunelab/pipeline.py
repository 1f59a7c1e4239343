"""pipeline.run(config): config -> data -> model + method -> train -> evaluate -> report.

The CLI calls this and adds nothing of its own."""

import json
import resource
import time
from pathlib import Path

import numpy as np
from accelerate.utils import set_seed

from tunelab.artifacts import save_artifact, write_run_info
from tunelab.config import RunConfig, save_config
from tunelab.data.encode import encode_rows, label_counts
from tunelab.data.prepare import Splits, prepare_splits
from tunelab.errors import TunelabError
from tunelab.evaluate import evaluate, predict
from tunelab.methods import METHODS
from tunelab.models.anatomy import describe
from tunelab.models.embedded import resolve_model
from tunelab.models.loader import load_classifier, load_tokenizer
from tunelab.report import write_report
from tunelab.tasks import TASKS
from tunelab.tasks.classify import check_pooling
from tunelab.train.loop import Trainer, make_accelerator


def encode_splits(splits: Splits, tokenizer, config: RunConfig) -> tuple[dict, dict]:
    """Token ids per split, and the data summary (rows, labels, what was cut or dropped)."""
    label_ids = {label: i for i, label in enumerate(splits.labels)}
    data = config.data
    encoded, summary = {}, {"labels": splits.labels, **splits.notes, "splits": {}}
    for name, rows in splits.items():
        result = encode_rows(
            rows, tokenizer, label_ids, data.max_length, data.overlong, data.truncation_side
        )
        encoded[name] = result.examples
        summary["splits"][name] = {
            "rows": len(result.examples),
            "labels": label_counts(result.examples, splits.labels),
            "truncated_overlong": result.truncated,
            "dropped_overlong": result.dropped,
        }
        if not result.examples:
            raise TunelabError(f"the {name} split is empty after the max_length policy")
    summary["max_length"], summary["overlong"] = data.max_length, data.overlong
    return encoded, summary


def pick_examples(rows, count: int) -> list[int]:
    """Indices of `count` test rows, taking the labels in turn so every class shows."""
    by_label: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_label.setdefault(row.label, []).append(i)
    queues, picked = [list(v) for _, v in sorted(by_label.items())], []
    while len(picked) < min(count, len(rows)):
        for queue in queues:
            if queue and len(picked) < count:
                picked.append(queue.pop(0))
    return picked


def example_predictions(model, tokenizer, encoded, rows, picked, labels) -> list[dict]:
    probs, _ = predict(model, [encoded[i] for i in picked], tokenizer, batch_size=len(picked) or 1)
    return [
        {
            "text": rows[i].text,
            "label": rows[i].label,
            "predicted": labels[int(np.argmax(p))],
            "probs": {label: float(x) for label, x in zip(labels, p, strict=True)},
        }
        for i, p in zip(picked, probs, strict=True)
    ]


def count_parameters(model) -> dict:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "total": total, "trainable_pct": 100.0 * trainable / total}


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2))


def run(config: RunConfig, resume: bool = False) -> dict:
    """Train and evaluate one run; everything lands in config.output.dir."""
    run_dir = Path(config.output.dir)
    task, spec = TASKS.get(config.task.name), METHODS.get(config.method.name)
    if spec.name not in task.methods:
        raise TunelabError(f"method '{spec.name}' does not support task '{task.name}'")
    if run_dir.exists() and any(run_dir.iterdir()) and not resume:
        raise TunelabError(
            f"run directory {run_dir} is not empty; use --resume or another output.dir"
        )
    accelerator = make_accelerator(config.train)
    main = accelerator.is_main_process
    run_dir.mkdir(parents=True, exist_ok=True)
    set_seed(config.train.seed)
    splits = prepare_splits(config.data, config.train.seed)
    if main:
        resolve_model(config.model.name)  # the main process converts an embedded model once
    accelerator.wait_for_everyone()
    model_path = resolve_model(config.model.name)
    tokenizer = load_tokenizer(model_path, config.model.trust_remote_code)
    if spec.left_padding:
        tokenizer.padding_side = "left"  # harmless for encoders, needed for decoders
    encoded, data_summary = encode_splits(splits, tokenizer, config)
    mean = config.task.pooling == "mean"
    model = load_classifier(
        model_path,
        splits.labels,
        tokenizer,
        config.model.trust_remote_code,
        mean,
        **spec.options(config.method),
    )
    anatomy = describe(model)
    check_pooling(config.task.pooling, anatomy.is_encoder)
    if main:
        save_config(config, run_dir / "config.yaml")
        write_json(run_dir / "data_summary.json", data_summary)

    picked = pick_examples(splits.test, config.eval.examples)
    before = evaluate(
        model, task, encoded["test"], splits.labels, tokenizer, config.eval.batch_size, accelerator
    )
    before["examples"] = example_predictions(
        model, tokenizer, encoded["test"], splits.test, picked, splits.labels
    )

    model = spec.apply(model, config.method, anatomy)
    params = count_parameters(model)
    started = time.perf_counter()
    trainer = Trainer(
        model,
        task,
        tokenizer,
        config.train,
        accelerator,
        run_dir,
        config.eval.batch_size,
        splits.labels,
    )
    state = trainer.fit(encoded["train"], encoded["val"], resume)
    after = evaluate(
        model, task, encoded["test"], splits.labels, tokenizer, config.eval.batch_size, accelerator
    )
    after["examples"] = example_predictions(
        model, tokenizer, encoded["test"], splits.test, picked, splits.labels
    )

    summary = {
        "method": spec.name,
        "task": task.name,
        "model": config.model.name,
        "parameters": params,
        "epochs_run": state.epoch,
        "best_epoch": state.best_epoch,
        "train_seconds": state.seconds,
        "wall_seconds": time.perf_counter() - started,
        "tokens_per_s": state.tokens / state.seconds if state.seconds else None,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "processes": accelerator.num_processes,
        "test_accuracy_before": before["accuracy"],
        "test_accuracy_after": after["accuracy"],
        "test_macro_f1_after": after["macro_f1"],
    }
    if main:
        write_json(run_dir / "eval_before.json", before)
        write_json(run_dir / "eval_after.json", after)
        write_json(run_dir / "train_summary.json", summary)
        save_artifact(
            accelerator.unwrap_model(model),
            tokenizer,
            run_dir / spec.artifact,
            spec.artifact,
        )
        write_run_info(
            run_dir,
            {
                "base_model": model_path,
                "model": config.model.name,
                "labels": splits.labels,
                "method": spec.name,
                "task": task.name,
                "artifact": spec.artifact,
                "max_length": config.data.max_length,
                "truncation_side": config.data.truncation_side,
                "pooling": config.task.pooling,
                "padding_side": tokenizer.padding_side,
                "method_settings": config.method.model_dump(),
            },
        )
        write_report(run_dir)
    accelerator.wait_for_everyone()
    return summary
