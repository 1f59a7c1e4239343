"""Case (c) or (d) (`sft_lora.py`: the Trainer script, TRL's SFTTrainer and tunelab, each in its
own process) over several seeds: per seed each side's real tokens/s, peak RSS and test
perplexity; then tunelab's speed-up and perplexity difference against each peer, paired by seed
(every side shares a seed's split and LoRA initialisation, not the batch order or dropout masks),
with the standard error over seeds. Run it on an idle machine: the speeds are timed.

    python benchmarks/sft_seeds.py --seeds 1 2 3                 # case (c)
    python benchmarks/sft_seeds.py --method qlora --seeds 1 2 3  # case (d)
    python benchmarks/sft_seeds.py --precision bf16              # every side in bf16
    python benchmarks/sft_seeds.py --table                       # print the last result again
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import RESULTS, run_side
from sft_lora import SIDES

from tunelab.hardware import write_measurement  # noqa: E402

SCRIPT = str(HERE / "sft_lora.py")
PEERS = [side for side in SIDES if side != "tunelab"]


def run_seed(method: str, seed: int, precision: str) -> dict:
    argv = ["--method", method, "--seed", str(seed), "--precision", precision]
    row = {"seed": seed}
    for side in SIDES:
        figures = run_side(SCRIPT, side, argv)
        row[side] = {
            "tokens_per_s": figures["real_train_tokens"] / figures["train_s"],
            "peak_rss_mb": figures["peak_rss_mb"],
            "perplexity": figures["test_value"],
        }
    return row


def mean_and_error(values: list[float]) -> tuple[float, float | None]:
    spread = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else None
    return statistics.mean(values), spread


def summary(rows: list[dict]) -> dict:
    """Against each peer: tunelab's speed-up and relative perplexity difference, mean and
    standard error over seeds; and in how many seeds tunelab's perplexity was the lower."""
    result = {"seeds": len(rows)}
    for peer in PEERS:
        speed = [r["tunelab"]["tokens_per_s"] / r[peer]["tokens_per_s"] for r in rows]
        ppl = [r["tunelab"]["perplexity"] / r[peer]["perplexity"] - 1 for r in rows]
        result[peer] = {
            "speedup": mean_and_error(speed),
            "perplexity_diff": mean_and_error(ppl),
            "tunelab_lower_in": sum(p < 0 for p in ppl),
            "rss_ratio": statistics.mean(
                r["tunelab"]["peak_rss_mb"] / r[peer]["peak_rss_mb"] for r in rows
            ),
        }
    return result


def with_error(value: tuple[float, float | None], fmt: str) -> str:
    mean, error = value
    unsigned = fmt.replace("+", "")  # the error is a spread: no sign
    return fmt.format(mean) + (f" ± {unsigned.format(error)}" if error is not None else "")


def print_table(report: dict) -> None:
    print(
        f"\nSFT {report['method']}, smollm2-135m, per seed: real tokens/s | peak RSS MB | test perplexity"
    )
    print(f"{'seed':>5} " + " ".join(f"{side:>28}" for side in SIDES))
    for row in report["rows"]:
        cells = [
            f"{row[s]['tokens_per_s']:>8,.0f} | {row[s]['peak_rss_mb']:>6,.0f} | {row[s]['perplexity']:>7.4f}"
            for s in SIDES
        ]
        print(f"{row['seed']:>5} " + " ".join(f"{c:>28}" for c in cells))
    s = report["summary"]
    for peer in PEERS:
        p = s[peer]
        print(
            f"tunelab vs {peer}: speed-up {with_error(p['speedup'], '{:.2f}')}x, perplexity "
            f"{with_error(p['perplexity_diff'], '{:+.2%}')} (lower in {p['tunelab_lower_in']} of "
            f"{s['seeds']} seeds), peak RSS x{p['rss_ratio']:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", choices=["lora", "qlora"], default="lora")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--precision", choices=["fp32", "bf16", "auto"], default="fp32",
                        help="Every side's precision (sft_lora.py --precision).")  # fmt: skip
    parser.add_argument("--table", action="store_true", help="Print the last result again.")
    args = parser.parse_args()
    suffix = "" if args.precision == "fp32" else f"_{args.precision}"
    out = RESULTS / f"sft_{args.method}_seeds{suffix}.json"
    if args.table:
        print_table(json.loads(out.read_text()))
        return
    rows = []
    for seed in args.seeds:  # written after every seed: a cut-short sweep keeps what it ran
        rows.append(run_seed(args.method, seed, args.precision))
        report = {
            "method": args.method,
            "precision": args.precision,
            "sides": list(SIDES),
            "rows": rows,
            "summary": summary(rows),
        }
        write_measurement(out, report)
    print_table(report)
    print(f"written: {out}")


if __name__ == "__main__":
    main()
