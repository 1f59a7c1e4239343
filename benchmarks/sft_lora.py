"""Benchmark cases (c) and (d): SFT with LoRA, or QLoRA (4-bit NF4 base), on smollm2-135m and
the instruction data (`configs/rlhf_smollm2_sft.yaml`: chat template, loss on the answers).

Baseline: what the Hugging Face docs do: `Trainer` + `TrainingArguments` + PEFT, the standard
dynamic-padding collator (`DataCollatorForSeq2Seq`, labels padded with -100), random batches and
the model's own loss (full-vocabulary logits at every position). For QLoRA the same
`BitsAndBytesConfig` and `prepare_model_for_kbit_training` as tunelab. Both sides train on the
same encoded rows (tunelab's data stage), split, hyperparameters and epochs; both are scored by
the same held-out perplexity.

    python benchmarks/sft_lora.py                    # case (c): LoRA
    python benchmarks/sft_lora.py --method qlora     # case (d): QLoRA
    python benchmarks/sft_lora.py --seed 7           # another seed on both sides (sft_lora_seed7.json)
    python benchmarks/sft_lora.py --table            # print the last result again
"""

import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import (
    RESULTS,
    case_parser,
    compare_sides,
    emit_side,
    meta_backbone,
    parameter_count,
    print_table,
    write_result,
)
from sides import EpochClock, run_tunelab

CONFIG = HERE.parent / "configs" / "rlhf_smollm2_sft.yaml"


def overrides(args) -> list[str]:
    return [
        f"method.name={args.method}",
        f"train.epochs={args.epochs}",
        f"data.limit_train={args.limit_train}",
        "eval.generate_limit=1",  # perplexity is the score here; generation is not timed work
        *([f"train.seed={args.seed}"] if args.seed is not None else []),  # both sides' seed
    ]


def load_baseline_model(config, path: str):
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    from tunelab.methods.qlora import quantization_options

    quantized = config.method.name == "qlora"
    options = quantization_options(config.method) if quantized else {}
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **options)
    if quantized:
        from tunelab.models.loader import keep_4bit_weights_trainable

        keep_4bit_weights_trainable(model)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    settings = config.method  # the config's all-linear, r, alpha and dropout, as tunelab's run
    lora = LoraConfig(task_type="CAUSAL_LM", r=settings.r, lora_alpha=settings.alpha,
                      lora_dropout=settings.dropout, target_modules=settings.target_modules)  # fmt: skip
    return get_peft_model(model, lora)


def run_baseline(args) -> dict:
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments, set_seed

    from tunelab.pipeline import load_config, open_task
    from tunelab.tasks.generative.evaluate import perplexity

    started = time.perf_counter()
    config = load_config(CONFIG, overrides(args))
    task = open_task(config)  # the same encoded rows, labels and split as tunelab's run
    task.prepare()
    path, tokenizer, data = task.run.model_path, task.tokenizer, task.data
    set_seed(config.train.seed)  # as tunelab does before loading: LoRA starts the same
    model = load_baseline_model(config, path)
    val_loss = []

    def validate():  # the same perplexity function as tunelab's; its time is not training
        val_loss.append(perplexity(model, data.encoded["val"], tokenizer, 8)["loss"])

    clock = EpochClock(after_epoch=validate)
    rows = [{"input_ids": e["input_ids"], "labels": e["labels"]} for e in data.encoded["train"]]
    train = Dataset.from_list(rows)
    training = TrainingArguments(
        output_dir=tempfile.mkdtemp(), num_train_epochs=config.train.epochs,
        per_device_train_batch_size=config.train.batch_size, learning_rate=config.train.lr,
        weight_decay=config.train.weight_decay, lr_scheduler_type=config.train.scheduler,
        warmup_steps=config.train.warmup_ratio, save_strategy="no", report_to="none",
        use_cpu=True, seed=config.train.seed, disable_tqdm=True, remove_unused_columns=False,
    )  # fmt: skip
    collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)
    trainer = Trainer(model=model, args=training, train_dataset=train, data_collator=collator,
                      callbacks=[clock.callback])  # fmt: skip
    trainer.train()
    test = perplexity(model, data.encoded["test"], tokenizer, 8)
    return {
        "wall_s": time.perf_counter() - started,
        "train_s": clock.marks[-1],
        "epoch_end_s": clock.marks,
        "val_loss": val_loss,
        "real_train_tokens": sum(len(e["input_ids"]) for e in data.encoded["train"])
        * config.train.epochs,
        "test_value": test["perplexity"],
    }


def labelled_share(args) -> float:
    """Of the training rows' real tokens, the share whose next token is labelled (the answers)."""
    from tunelab.pipeline import load_config, open_task

    task = open_task(load_config(CONFIG, overrides(args)))
    task.prepare()
    rows = task.data.encoded["train"]
    labelled = sum(sum(t != -100 for t in e["labels"][1:]) for e in rows)
    return labelled / sum(len(e["input_ids"]) for e in rows)


def useful_flops_per_token(args) -> float:
    """4N per token, but the vocabulary projection (V x d of N) only where a label is: what the
    loss needs. The baseline computes it at every position; that work is not counted as useful."""
    backbone = meta_backbone("smollm2-135m")
    vocab = backbone.get_input_embeddings().weight.numel()  # tied: the output layer's V x d
    return 4 * (parameter_count("smollm2-135m") - vocab) + 4 * vocab * labelled_share(args)


def run_side_here(args) -> dict:
    if args.side == "baseline":
        return run_baseline(args)
    return run_tunelab(CONFIG, overrides(args), lambda summary, after: after["perplexity"])


def main() -> None:
    parser = case_parser(epochs=2, limit_train=160)
    parser.add_argument("--method", choices=["lora", "qlora"], default="lora")
    parser.add_argument("--seed", type=int, help="Another seed than the config's, on both sides.")
    args = parser.parse_args()
    name = f"sft_{args.method}" + (f"_seed{args.seed}" if args.seed is not None else "")
    if args.table:
        print_table(json.loads((RESULTS / f"{name}.json").read_text()))
    elif args.side:
        emit_side(run_side_here(args))
    else:
        argv = ["--method", args.method, "--epochs", str(args.epochs), "--limit-train", str(args.limit_train)]  # fmt: skip
        argv += ["--seed", str(args.seed)] if args.seed is not None else []
        lora = 4 * parameter_count("smollm2-135m")  # forward 2N + backward to the inputs 2N
        report = compare_sides(__file__, argv, "smollm2-135m", "val_loss", lambda side: lora)
        useful = useful_flops_per_token(args)
        for side in ("baseline", "tunelab"):
            report[side]["mfu_useful"] = report[side]["mfu"] * useful / lora
        case = "c: SFT LoRA" if args.method == "lora" else "d: SFT QLoRA (4-bit NF4 base)"
        report = {"case": f"{case}, smollm2-135m, instruction data", **vars(args), **report,
                  "test_metric": "test perplexity", "val_metric": "val loss"}  # fmt: skip
        write_result(report, name)


if __name__ == "__main__":
    main()
