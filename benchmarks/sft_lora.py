"""Benchmark cases (c) and (d): SFT with LoRA, or QLoRA (4-bit NF4 base), on smollm2-135m and
the instruction data (`configs/rlhf_smollm2_sft.yaml`: chat template, loss on the answers).

Three sides, each in its own process: the plain Trainer + PEFT script (baseline), TRL 1.16's
SFTTrainer (trl), both in sft_peers.py, and tunelab's run of the config (tunelab). All train on
the same rows, split, hyperparameters and epochs and are scored by the same held-out perplexity.

    python benchmarks/sft_lora.py                    # case (c): LoRA
    python benchmarks/sft_lora.py --method qlora     # case (d): QLoRA
    python benchmarks/sft_lora.py --seed 7           # another seed on every side (sft_lora_seed7.json)
    python benchmarks/sft_lora.py --table            # print the last result again
    python benchmarks/sft_lora.py --precision bf16   # every side in bf16 (sft_lora_bf16.json)
    python benchmarks/sft_lora.py --precision auto   # tunelab's choice for this CPU, peers alike
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
    meta_backbone,
    parameter_count,
    print_table,
    write_result,
)
from sft_peers import run_peer
from sides import run_tunelab

CONFIG = HERE.parent / "configs" / "rlhf_smollm2_sft.yaml"
SIDES = ("baseline", "trl", "tunelab")


def overrides(args) -> list[str]:
    return [
        f"method.name={args.method}",
        f"train.epochs={args.epochs}",
        f"data.limit_train={args.limit_train}",
        "eval.generate_limit=1",  # perplexity is the score here; generation is not timed work
        *([f"train.seed={args.seed}"] if args.seed is not None else []),  # every side's seed
        f"train.precision={args.precision}",  # the peers' bf16 follows it (sft_peers.py)
    ]


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
    if args.side == "tunelab":
        return run_tunelab(CONFIG, overrides(args), lambda summary, after: after["perplexity"])
    from tunelab.pipeline import load_config

    # the peers train on unpacked rows, whatever tunelab's packing default
    return run_peer(args.side, load_config(CONFIG, [*overrides(args), "task.packing=false"]))


def main() -> None:
    parser = case_parser(epochs=2, limit_train=160)
    parser.add_argument("--method", choices=["lora", "qlora"], default="lora")
    parser.add_argument("--seed", type=int, help="Another seed than the config's, on both sides.")
    parser.add_argument("--precision", choices=["fp32", "bf16", "auto"], default="fp32",
                        help="Every side's precision (auto: tunelab's choice on this CPU).")  # fmt: skip
    args = parser.parse_args()
    name = f"sft_{args.method}" + (f"_seed{args.seed}" if args.seed is not None else "")
    name += "" if args.precision == "fp32" else f"_{args.precision}"
    if args.table:
        print_table(json.loads((RESULTS / f"{name}.json").read_text()))
    elif args.side:
        emit_side(run_side_here(args))
    else:
        argv = ["--method", args.method, "--epochs", str(args.epochs), "--limit-train", str(args.limit_train)]  # fmt: skip
        argv += ["--seed", str(args.seed)] if args.seed is not None else []
        argv += ["--precision", args.precision]
        lora = 4 * parameter_count("smollm2-135m")  # forward 2N + backward to the inputs 2N
        report = compare_sides(__file__, argv, "smollm2-135m", "val_loss", lambda side: lora, SIDES)
        useful = useful_flops_per_token(args)
        for side in SIDES:
            report[side]["mfu_useful"] = report[side]["mfu"] * useful / lora
        case = "c: SFT LoRA" if args.method == "lora" else "d: SFT QLoRA (4-bit NF4 base)"
        report = {"case": f"{case}, smollm2-135m, instruction data", **vars(args), **report,
                  "test_metric": "test perplexity", "val_metric": "val loss"}  # fmt: skip
        write_result(report, name)


if __name__ == "__main__":
    main()
