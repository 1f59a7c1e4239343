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

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import (
    RESULTS,
    case_parser,
    compare_sides,
    emit_side,
    flops_per_token_freeze,
    print_table,
    write_result,
)
from sides import run_trainer_classify, run_tunelab

CONFIG = HERE.parent / "configs" / "spam_smollm2_freeze.yaml"


def overrides(args) -> list[str]:
    return [f"train.epochs={args.epochs}", f"data.limit_train={args.limit_train}"]


def build_model(path: str, labels: dict, tokenizer):
    """Seed 000: last-token logits, the last block + final norm + new head trainable."""
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=len(labels), dtype=torch.float32
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    for param in model.parameters():
        param.requires_grad = False
    for module in (model.model.layers[-1], model.model.norm, model.score):
        for param in module.parameters():
            param.requires_grad = True
    return model


def run_side_here(args) -> dict:
    if args.side == "baseline":
        return run_trainer_classify(CONFIG, overrides(args), build_model, pad_to_longest=True)
    return run_tunelab(CONFIG, overrides(args), lambda summary, after: summary["score"])


def main() -> None:
    args = case_parser(epochs=4, limit_train=10_000).parse_args()
    if args.table:
        print_table(json.loads((RESULTS / "spam_freeze.json").read_text()))
    elif args.side:
        emit_side(run_side_here(args))
    else:
        argv = ["--epochs", str(args.epochs), "--limit-train", str(args.limit_train)]

        def flops(side):  # tunelab runs the frozen blocks once in all
            return flops_per_token_freeze(side == "tunelab", args.epochs)

        report = compare_sides(__file__, argv, "smollm2-135m", "val_accuracy", flops)
        case = "a: seed-000 spam, smollm2-135m, freeze k=1"
        write_result({"case": case, **vars(args), **report}, "spam_freeze")


if __name__ == "__main__":
    main()
