"""Is tunelab's SFT test perplexity no worse than the baseline's, or only different by the luck of
the seed? Runs case (c) or (d) (`sft_lora.py`, both sides, each in its own process) over several
seeds and compares the paired differences with their spread. Timings are not the point here.

    python benchmarks/sft_seeds.py --seeds 1 2 3 4 5            # case (c)
    python benchmarks/sft_seeds.py --method qlora --seeds 1 2 3  # case (d)
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

SCRIPT = str(HERE / "sft_lora.py")


def run_seed(method: str, seed: int) -> dict:
    argv = ["--method", method, "--seed", str(seed)]
    sides = {side: run_side(SCRIPT, side, argv) for side in ("baseline", "tunelab")}
    return {side: sides[side]["test_value"] for side in sides} | {"seed": seed}


def summary(rows: list[dict]) -> dict:
    """Mean relative difference of tunelab's perplexity to the baseline's, and its standard
    error over seeds (paired: both sides share each seed's split and LoRA initialisation, not
    the batch order or the dropout masks)."""
    relative = [row["tunelab"] / row["baseline"] - 1 for row in rows]
    spread = statistics.stdev(relative) / len(relative) ** 0.5 if len(relative) > 1 else None
    return {"mean_relative_diff": statistics.mean(relative), "standard_error": spread,
            "tunelab_lower_in": sum(r < 0 for r in relative), "seeds": len(rows)}  # fmt: skip


def print_table(report: dict) -> None:
    print(f"\ntest perplexity by seed, {report['method']} (lower is better)")
    print(f"{'seed':>6} {'baseline':>10} {'tunelab':>10} {'diff':>8}")
    for row in report["rows"]:
        diff = row["tunelab"] / row["baseline"] - 1
        print(f"{row['seed']:>6} {row['baseline']:>10.4f} {row['tunelab']:>10.4f} {diff:>+8.2%}")
    s = report["summary"]
    error = f" ± {s['standard_error']:.2%}" if s["standard_error"] is not None else ""
    print(f"mean difference {s['mean_relative_diff']:+.2%}{error} (standard error over "
          f"{s['seeds']} seeds); tunelab lower in {s['tunelab_lower_in']} of {s['seeds']}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--method", choices=["lora", "qlora"], default="lora")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--table", action="store_true", help="Print the last result again.")
    args = parser.parse_args()
    out = RESULTS / f"sft_{args.method}_seeds.json"
    if args.table:
        print_table(json.loads(out.read_text()))
        return
    rows = []
    for seed in args.seeds:  # written after every seed: a cut-short sweep keeps what it ran
        rows.append(run_seed(args.method, seed))
        report = {"method": args.method, "rows": rows, "summary": summary(rows)}
        out.write_text(json.dumps(report, indent=2))
    print_table(report)
    print(f"written: {out}")


if __name__ == "__main__":
    main()
