"""`tunelab bench` against the `lm_eval` CLI itself on the same model, tasks and documents: do
they agree within standard error? Prints a table and writes results/bench_vs_lm_eval.json with
the machine it ran on.

    python benchmarks/bench_vs_lm_eval.py                       # the quick suite on SmolLM2
    python benchmarks/bench_vs_lm_eval.py --tasks arc_easy --limit 50
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tunelab.bench.run import BenchSettings, bench, metric_of
from tunelab.bench.sources import bench_dir
from tunelab.bench.tasks import QUICK_LIMIT, pick, task_name, write_tasks
from tunelab.hardware import describe_machine, write_measurement
from tunelab.models.embedded import resolve_model

RESULTS = Path(__file__).resolve().parent / "results"


def lm_eval_cli(model: str, names: list[str], folder: Path, batch_size: int) -> dict[str, dict]:
    """The harness's own command line on the converted model folder (`--model hf`)."""
    with tempfile.TemporaryDirectory() as out:
        command = [
            sys.executable, "-m", "lm_eval", "--model", "hf",
            "--model_args", f"pretrained={resolve_model(model)},dtype=float32",
            "--include_path", str(folder), "--tasks", ",".join(task_name(n) for n in names),
            "--batch_size", str(batch_size), "--device", "cpu", "--seed", "0",
            "--output_path", out,
        ]  # fmt: skip
        offline = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
        subprocess.run(command, check=True, env=offline)
        results = json.loads(next(Path(out).rglob("results_*.json")).read_text())["results"]
    figures = {}
    for name in names:
        metric, kept = metric_of(name)
        row = results[task_name(name)]
        figures[name] = {"score": row[f"{metric},{kept}"], "stderr": row[f"{metric}_stderr,{kept}"]}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--tasks", default="quick")
    parser.add_argument("--limit", type=int, default=QUICK_LIMIT)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    names = pick(args.tasks)
    folder = write_tasks(names, bench_dir(), args.limit)
    started = time.perf_counter()
    ours = bench(args.model, BenchSettings(names, args.limit, batch_size=args.batch_size))
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    theirs = lm_eval_cli(args.model, names, folder, args.batch_size)
    theirs_s = time.perf_counter() - started
    rows = []
    for name in names:
        mine, peer = ours["scores"][name], theirs[name]
        gap = abs(mine["score"] - peer["score"])
        rows.append(
            {
                "benchmark": name,
                "metric": mine["metric"],
                "n": mine["n"],
                "tunelab": mine["score"],
                "lm_eval_cli": peer["score"],
                "stderr": peer["stderr"],
                "gap": gap,
                "within_stderr": gap <= peer["stderr"],
            }
        )
    machine = describe_machine()
    print(f"machine: {machine}")
    print(f"tunelab bench {ours_s:.0f} s, lm_eval CLI {theirs_s:.0f} s")
    print("| benchmark | metric | n | tunelab bench | lm_eval CLI | stderr | gap | within? |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['benchmark']} | {r['metric']} | {r['n']} | {r['tunelab']:.4f} | "
            f"{r['lm_eval_cli']:.4f} | {r['stderr']:.4f} | {r['gap']:.4f} | "
            f"{'yes' if r['within_stderr'] else 'no'} |"
        )
    report = {
        "model": args.model,
        "limit": args.limit,
        "rows": rows,
        "tunelab_seconds": ours_s,
        "lm_eval_seconds": theirs_s,
    }
    path = write_measurement(RESULTS / "bench_vs_lm_eval.json", report)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
