"""Benchmark case (a), the seed-000 recipe: SMS spam, smollm2-135m, freeze k=1.

Baseline: what the seed and the Hugging Face docs do: `Trainer` + `TrainingArguments`, every
row padded to the dataset's longest row, the model's last block + final norm + head trainable.
tunelab: `tunelab train configs/spam_smollm2_freeze.yaml` with the same rows, split,
hyperparameters and epochs (dynamic padding, length-grouped batches, frozen-block cache).

    python benchmarks/spam_freeze.py                 # both sides, a table, benchmarks/results/spam_freeze.json
    python benchmarks/spam_freeze.py --epochs 2 --limit-train 400   # a shorter budget

Each side runs in its own process (its peak RSS is its own), one after the other, after a
warm-up that loads the model once; the machine's fp32 matmul peak is measured in the same run.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import flops_per_token_freeze, matmul_peak_gflops, print_table, time_to_reach  # noqa: E402

CONFIG = HERE.parent / "configs" / "spam_smollm2_freeze.yaml"


def overrides(args) -> list[str]:
    return [f"train.epochs={args.epochs}", f"data.limit_train={args.limit_train}"]


def run_tunelab(args) -> dict:
    from tunelab.config import load_config
    from tunelab.pipeline import run

    out = Path(tempfile.mkdtemp()) / "run"
    config = load_config(CONFIG, [*overrides(args), f"output.dir={out}"])
    started = time.perf_counter()
    summary = run(config)
    wall = time.perf_counter() - started
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    epochs = [h for h in history if h["event"] == "eval"]
    data = json.loads((out / "data_summary.json").read_text())
    return {
        "wall_s": wall,
        "train_s": summary["train_seconds"],
        # the one pass through the frozen blocks comes before the first epoch
        "epoch_end_s": [
            summary["cache_seconds"] + sum(e["train_seconds"] for e in epochs[: i + 1])
            for i in range(len(epochs))
        ],
        "cache_s": summary["cache_seconds"],
        "val_accuracy": [e["val_accuracy"] for e in epochs],
        "real_train_tokens": sum(e["train_tokens"] for e in epochs),
        "test_accuracy": summary["test_accuracy_after"],
        "rows": {k: v["rows"] for k, v in data["splits"].items()},
    }


def run_baseline(args) -> dict:
    import numpy as np
    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    from tunelab.config import load_config
    from tunelab.data.prepare import prepare_splits
    from tunelab.models.embedded import resolve_model
    from tunelab.models.loader import load_tokenizer

    config = load_config(CONFIG, overrides(args))
    splits = prepare_splits(config.data, config.train.seed)  # the same rows and split
    path = resolve_model(config.model.name)
    tokenizer = load_tokenizer(path)
    labels = {label: i for i, label in enumerate(splits.labels)}
    longest = max(
        len(tokenizer(r.text, truncation=True, max_length=config.data.max_length)["input_ids"])
        for r in splits.train
    )

    def dataset(rows):  # seed 000: every row padded to the longest training row
        encoded = tokenizer([r.text for r in rows], padding="max_length", truncation=True,
                            max_length=longest)  # fmt: skip
        return Dataset.from_dict({**encoded, "labels": [labels[r.label] for r in rows]})

    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=len(labels), dtype=torch.float32
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    for param in model.parameters():
        param.requires_grad = False
    for module in (model.model.layers[-1], model.model.norm, model.score):
        for param in module.parameters():
            param.requires_grad = True

    marks: list[float] = []

    class EpochClock(TrainerCallback):
        def on_train_begin(self, *a, **k):
            self.start = time.perf_counter()

        def on_epoch_end(self, *a, **k):
            marks.append(time.perf_counter() - self.start)

    def accuracy(prediction):
        return {
            "accuracy": float(
                (np.argmax(prediction.predictions, -1) == prediction.label_ids).mean()
            )
        }

    training = TrainingArguments(
        output_dir=tempfile.mkdtemp(), num_train_epochs=config.train.epochs,
        per_device_train_batch_size=config.train.batch_size, per_device_eval_batch_size=32,
        learning_rate=config.train.lr, weight_decay=config.train.weight_decay, eval_strategy="epoch",
        save_strategy="no", report_to="none", use_cpu=True, seed=config.train.seed, disable_tqdm=True,
    )  # fmt: skip
    train = dataset(splits.train)
    trainer = Trainer(model=model, args=training, train_dataset=train, eval_dataset=dataset(splits.val),
                      compute_metrics=accuracy, callbacks=[EpochClock()])  # fmt: skip
    started = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - started
    history = [h["eval_accuracy"] for h in trainer.state.log_history if "eval_accuracy" in h]
    test = trainer.predict(dataset(splits.test))
    real = sum(sum(m) for m in train["attention_mask"]) * config.train.epochs
    return {
        "wall_s": time.perf_counter() - started,
        "train_s": train_s,
        "epoch_end_s": marks,
        "val_accuracy": history,
        "real_train_tokens": real,
        "padded_train_tokens": len(train) * longest * config.train.epochs,
        "test_accuracy": float((np.argmax(test.predictions, -1) == test.label_ids).mean()),
    }


def side(name: str, args) -> dict:
    """One side in a fresh process; its peak RSS comes back with its figures."""
    command = [sys.executable, __file__, "--side", name, "--epochs", str(args.epochs),
               "--limit-train", str(args.limit_train)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", choices=["baseline", "tunelab"])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--limit-train", type=int, default=10_000)
    parser.add_argument("--table", action="store_true", help="Print the last result again.")
    args = parser.parse_args()
    if args.table:
        print_table(json.loads((HERE / "results" / "spam_freeze.json").read_text()))
        return
    if args.side:
        import resource

        figures = run_baseline(args) if args.side == "baseline" else run_tunelab(args)
        figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(figures))
        return
    from tunelab.models.embedded import resolve_model

    resolve_model("smollm2-135m")  # warm-up: the conversion and file cache are not timed
    peak = matmul_peak_gflops()
    results = {"baseline": side("baseline", args), "tunelab": side("tunelab", args)}
    target = results["baseline"]["val_accuracy"][-1]
    for name, r in results.items():
        r["time_to_baseline_val_s"] = time_to_reach(r["epoch_end_s"], r["val_accuracy"], target)
        r["tokens_per_s"] = r["real_train_tokens"] / r["train_s"]
        flops = flops_per_token_freeze(name == "tunelab", args.epochs) * r["real_train_tokens"]
        r["mfu"] = flops / r["train_s"] / (peak * 1e9)
    report = {"case": "a: seed-000 spam, smollm2-135m, freeze k=1", "epochs": args.epochs,
              "limit_train": args.limit_train, "matmul_peak_gflops": peak, **results}  # fmt: skip
    out = HERE / "results" / "spam_freeze.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print_table(report)
    print(f"written: {out}")


if __name__ == "__main__":
    main()
