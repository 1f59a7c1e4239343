"""Benchmark case (b), the seed-001 recipe: IMDb reviews, all-MiniLM-L6-v2, LoRA on the query
projections (r=4, alpha=32, dropout 0.01), the new head trained in full.

Baseline: the seed's script: `AutoModelForSequenceClassification` + PEFT `get_peft_model`,
reviews cut at 512 tokens, `DataCollatorWithPadding` (dynamic padding, random batches),
`Trainer`. tunelab: `configs/imdb_minilm_lora.yaml` with the same rows, split, length limit
(512, the seed's), LoRA settings, hyperparameters and epochs. One difference is on purpose and
costs nothing to compute: tunelab pools the encoder by its mean, the way this sentence encoder was
trained, where the seed's `AutoModelForSequenceClassification` reads the [CLS] position through
BERT's pooler (in a first run, 800 rows x 2 epochs, both sides with CLS pooling stayed at chance,
0.52 and 0.53 test accuracy, so there was no accuracy to compare).

    python benchmarks/imdb_lora.py                   # both sides, a table, benchmarks/results/imdb_lora.json
    python benchmarks/imdb_lora.py --table           # print the last result again
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
    embedding_count,
    emit_side,
    parameter_count,
    print_table,
    write_result,
)
from sides import run_trainer_classify, run_tunelab

CONFIG = HERE.parent / "configs" / "imdb_minilm_lora.yaml"


def overrides(args) -> list[str]:
    return [f"train.epochs={args.epochs}", f"data.limit_train={args.limit_train}", "data.max_length=512"]  # fmt: skip


def build_model(path: str, labels: dict, tokenizer):
    """Seed 001: a sequence classifier, LoRA on the query projections, the head in full."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=len(labels), dtype=torch.float32
    )
    lora = LoraConfig(
        task_type="SEQ_CLS", r=4, lora_alpha=32, lora_dropout=0.01, target_modules=["query"]
    )
    return get_peft_model(model, lora)


def run_side_here(args) -> dict:
    if args.side == "baseline":
        return run_trainer_classify(CONFIG, overrides(args), build_model, pad_to_longest=False)
    return run_tunelab(CONFIG, overrides(args), lambda summary, after: summary["score"])


def main() -> None:
    args = case_parser(epochs=2, limit_train=1200).parse_args()
    if args.table:
        print_table(json.loads((RESULTS / "imdb_lora.json").read_text()))
    elif args.side:
        emit_side(run_side_here(args))
    else:
        argv = ["--epochs", str(args.epochs), "--limit-train", str(args.limit_train)]
        # forward 2N + backward to the inputs 2N, N without the embedding tables (lookups)
        lora = 4 * (parameter_count("minilm-l6") - embedding_count("minilm-l6"))
        report = compare_sides(__file__, argv, "minilm-l6", "val_accuracy", lambda side: lora)
        case = "b: seed-001 IMDb, all-MiniLM-L6-v2, LoRA (query)"
        write_result({"case": case, **vars(args), **report}, "imdb_lora")


if __name__ == "__main__":
    main()
