"""The two sides of a benchmark case: tunelab's own run of a config, and the Trainer script a
user would write for a classification recipe (seed 000 / seed 001 style)."""

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def run_tunelab(config_path: Path, overrides: list[str], test_metric: Callable[[dict, dict], float]) -> dict:  # fmt: skip
    """`tunelab train` on the config; per-epoch times and validation figures from metrics.jsonl.
    test_metric(summary, eval_after) picks the final test figure."""
    from tunelab.pipeline import load_config, run

    out = Path(tempfile.mkdtemp()) / "run"
    config = load_config(config_path, [*overrides, f"output.dir={out}"])
    started = time.perf_counter()
    summary = run(config)
    wall = time.perf_counter() - started
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    epochs = [h for h in history if h["event"] == "eval"]
    cache = summary.get("cache_seconds", 0.0)  # head/freeze: the one pass before epoch 1
    return {
        "wall_s": wall,
        "train_s": summary["train_seconds"],
        "epoch_end_s": [
            cache + sum(e["train_seconds"] for e in epochs[: i + 1]) for i in range(len(epochs))
        ],
        "cache_s": cache,
        "val_accuracy": [e.get("val_accuracy") for e in epochs],
        "val_loss": [e["val_loss"] for e in epochs],
        "real_train_tokens": sum(e["train_tokens"] for e in epochs),
        "test_value": test_metric(summary, json.loads((out / "eval_after.json").read_text())),
        "precision": summary["precision"],
    }


class EpochClock:
    """A Trainer callback: the training seconds at each epoch's end, less evaluation time (the
    Trainer's own, and after_epoch(), the harness's validation, run at each epoch's end)."""

    def __init__(self, after_epoch: Callable[[], None] | None = None):
        from transformers import TrainerCallback

        clock = self

        class Callback(TrainerCallback):
            def on_train_begin(self, *a, **k):
                clock.start = time.perf_counter()

            def on_epoch_end(self, *a, **k):
                clock.marks.append(clock.elapsed())
                if after_epoch is not None:
                    after_epoch()
                    clock.paused += clock.elapsed() - clock.marks[-1]

            def on_evaluate(self, *a, **k):
                clock.paused += clock.elapsed() - clock.marks[-1]

        self.callback, self.marks, self.paused = Callback(), [], 0.0

    def elapsed(self) -> float:
        return time.perf_counter() - self.start - self.paused


def run_trainer_classify(config_path: Path, overrides: list[str], build_model: Callable, pad_to_longest: bool) -> dict:  # fmt: skip
    """Trainer + TrainingArguments on tunelab's rows and split: every row padded to the
    dataset's longest (seed 000) or dynamic padding with the standard collator (seed 001).
    build_model(path, labels, tokenizer) -> the model with its trainable parameters set."""
    import numpy as np
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, set_seed

    from tunelab.data.prepare import prepare_splits
    from tunelab.models.embedded import resolve_model
    from tunelab.models.loader import load_tokenizer
    from tunelab.pipeline import load_config

    started = time.perf_counter()
    config = load_config(config_path, overrides)
    splits = prepare_splits(config.data, config.train.seed)  # the same rows and split
    path = resolve_model(config.model.name)
    tokenizer = load_tokenizer(path)
    labels = {label: i for i, label in enumerate(splits.labels)}
    limit = config.data.max_length
    longest = max(
        len(tokenizer(r.text, truncation=True, max_length=limit)["input_ids"]) for r in splits.train
    )

    def dataset(rows):
        padding = (
            {"padding": "max_length", "max_length": longest}
            if pad_to_longest
            else {"max_length": limit}
        )
        encoded = tokenizer([r.text for r in rows], truncation=True, **padding)
        return Dataset.from_dict({**encoded, "labels": [labels[r.label] for r in rows]})

    def accuracy(prediction):
        return {
            "accuracy": float(
                (np.argmax(prediction.predictions, -1) == prediction.label_ids).mean()
            )
        }

    clock = EpochClock()
    set_seed(config.train.seed)  # as tunelab does before loading: the new head starts the same
    model = build_model(path, labels, tokenizer)
    training = TrainingArguments(
        output_dir=tempfile.mkdtemp(), num_train_epochs=config.train.epochs,
        per_device_train_batch_size=config.train.batch_size, per_device_eval_batch_size=32,
        learning_rate=config.train.lr, weight_decay=config.train.weight_decay, eval_strategy="epoch",
        save_strategy="no", report_to="none", use_cpu=True, seed=config.train.seed, disable_tqdm=True,
    )  # fmt: skip
    train = dataset(splits.train)
    trainer = Trainer(
        model=model, args=training, train_dataset=train,
        eval_dataset=dataset(splits.val), compute_metrics=accuracy, callbacks=[clock.callback],
        data_collator=None if pad_to_longest else DataCollatorWithPadding(tokenizer),
    )  # fmt: skip
    trainer.train()
    history = [h for h in trainer.state.log_history if "eval_accuracy" in h]
    test = trainer.predict(dataset(splits.test))
    real = sum(sum(m) for m in train["attention_mask"]) * config.train.epochs
    return {
        "wall_s": time.perf_counter() - started,
        "train_s": clock.marks[-1],
        "epoch_end_s": clock.marks,
        "val_accuracy": [h["eval_accuracy"] for h in history],
        "val_loss": [h["eval_loss"] for h in history],
        "real_train_tokens": real,
        "test_value": float((np.argmax(test.predictions, -1) == test.label_ids).mean()),
    }
