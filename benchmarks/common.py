"""What every benchmark case shares: the machine's matmul peak, FLOP counts, running each side
in its own process, the table and the JSON result."""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from tunelab.hardware import describe_machine, write_measurement  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def matmul_peak_gflops(size: int = 2048, repeats: int = 20) -> float:
    """The best fp32 GEMM rate of this machine, measured now (the MFU denominator)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def meta_backbone(model_name: str):
    """The model's backbone on the meta device: its weights counted, nothing loaded."""
    from transformers import AutoConfig, AutoModel

    from tunelab.models.embedded import resolve_model

    with torch.device("meta"):
        return AutoModel.from_config(AutoConfig.from_pretrained(resolve_model(model_name)))


def parameter_count(model_name: str) -> int:
    """N of the FLOP counts: every weight of the backbone (a tied LM head is the embedding)."""
    return sum(p.numel() for p in meta_backbone(model_name).parameters())


def embedding_count(model_name: str) -> int:
    """The lookup tables among N (words, positions, token types): no multiply-adds unless the
    output layer is tied to the word table, which a classifier does not use."""
    modules = meta_backbone(model_name).modules()
    return sum(m.weight.numel() for m in modules if isinstance(m, torch.nn.Embedding))


def flops_per_token_freeze(cached: bool, epochs: int) -> float:
    """Per real training token and epoch, freeze k=1: the frozen blocks forward only (2N), the
    top block forward and backward (6N). With the cache the frozen blocks run once in all."""
    layers = meta_backbone("smollm2-135m").layers
    per_block, blocks = sum(p.numel() for p in layers[0].parameters()), len(layers)
    frozen, top = per_block * (blocks - 1), per_block
    return 2 * frozen / (epochs if cached else 1) + 6 * top


def time_to_reach(epoch_end_s: list[float], values: list[float], target: float, lower_is_better: bool) -> float | None:  # fmt: skip
    for seconds, value in zip(epoch_end_s, values, strict=False):
        if (value <= target) if lower_is_better else (value >= target):
            return seconds
    return None


def run_side(script: str, name: str, argv: list[str]) -> dict:
    """One side in a fresh process (its peak RSS is its own); its figures come back as JSON."""
    command = [sys.executable, script, "--side", name, *argv]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"the {name} side failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def emit_side(figures: dict) -> None:
    """Inside a side's process: add its peak RSS and print the figures for run_side."""
    import resource

    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures))


def case_parser(epochs: int, limit_train: int) -> argparse.ArgumentParser:
    """The arguments every case takes; --side is how run_side starts one side."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--side", choices=["baseline", "trl", "tunelab"])
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--limit-train", type=int, default=limit_train)
    parser.add_argument("--table", action="store_true", help="Print the last result again.")
    return parser


def compare_sides(script: str, argv: list[str], model_name: str, val_key: str, flops_per_token, sides: tuple[str, ...] = ("baseline", "tunelab")) -> dict:  # fmt: skip
    """Warm up, measure the matmul peak, run each side (the first is the reference of the
    time-to-target column; tunelab last) and derive the columns.
    flops_per_token(side) -> model FLOPs per real training token on that side."""
    from tunelab.models.embedded import resolve_model

    resolve_model(model_name)  # warm-up: the conversion and file cache are not timed
    peak = matmul_peak_gflops()
    results = {side: run_side(script, side, argv) for side in sides}
    target = results[sides[0]][val_key][-1]
    for side, r in results.items():
        r["time_to_baseline_val_s"] = time_to_reach(
            r["epoch_end_s"], r[val_key], target, lower_is_better=val_key == "val_loss"
        )
        r["tokens_per_s"] = r["real_train_tokens"] / r["train_s"]
        r["mfu"] = flops_per_token(side) * r["tokens_per_s"] / (peak * 1e9)
    return {"matmul_peak_gflops": peak, "sides": list(sides), **results}


def write_result(report: dict, name: str) -> Path:
    out = RESULTS / f"{name}.json"
    write_measurement(out, report)
    print_table(json.loads(out.read_text()))  # with the machine it ran on
    print(f"written: {out}")
    return out


TIMES = ("wall_s", "train_s", "time_to_baseline_val_s")  # lower is better


def speedup(key: str, peer: float | None, ours: float | None) -> str:
    """tunelab against a peer: peer time / tunelab time, or tunelab rate / peer rate."""
    if not (peer and ours) or key not in (*TIMES, "tokens_per_s"):
        return ""
    return f"{peer / ours:.2f}x" if key in TIMES else f"{ours / peer:.2f}x"


def print_table(report: dict) -> None:
    test, val = report.get("test_metric", "test accuracy"), report.get("val_metric", "val acc")
    rows = [
        ("wall time (s)", "wall_s", "{:.0f}"),
        ("training time (s)", "train_s", "{:.0f}"),
        (f"time to baseline's final {val} (s)", "time_to_baseline_val_s", "{:.0f}"),
        ("real tokens/s", "tokens_per_s", "{:,.1f}"),
        ("peak RSS (MB)", "peak_rss_mb", "{:,.0f}"),
        (test, "test_value", "{:.4f}"),
        ("MFU (real tokens)", "mfu", "{:.1%}"),
        ("MFU (useful FLOPs only)", "mfu_useful", "{:.1%}"),
    ]
    sides = report.get("sides", ["baseline", "tunelab"])
    peers = [side for side in sides if side != "tunelab"]
    print(f"\n{report['case']}  (fp32 matmul peak {report['matmul_peak_gflops']:.0f} GFLOP/s)")
    if "machine" in report:
        print(f"on {describe_machine(report['machine'])}")
    heads = [f"{side:>12}" for side in sides] + [f"{'vs ' + peer:>12}" for peer in peers]
    print(f"{'':40} {' '.join(heads)}")
    for title, key, fmt in rows:
        values = {side: report[side].get(key) for side in sides}
        if all(v is None for v in values.values()):
            continue  # a column this case does not have
        cells = [fmt.format(v) if v is not None else "-" for v in values.values()]
        cells += [speedup(key, values[peer], values["tunelab"]) for peer in peers]
        print(f"{title:40} {' '.join(f'{c:>12}' for c in cells)}")
