"""What every benchmark case shares: the machine's matmul peak, FLOP counts, the table."""

import time

import torch


def matmul_peak_gflops(size: int = 2048, repeats: int = 10) -> float:
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


def block_parameters(model_name: str = "smollm2-135m") -> tuple[int, int]:
    """(parameters of one transformer block, number of blocks), counted on a meta-device copy."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from tunelab.models.embedded import resolve_model

    config = AutoConfig.from_pretrained(resolve_model(model_name))
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    layers = model.model.layers
    return sum(p.numel() for p in layers[0].parameters()), len(layers)


def flops_per_token_freeze(cached: bool, epochs: int) -> float:
    """Per real training token and epoch, freeze k=1: the frozen blocks forward only (2N), the
    top block forward and backward (6N). With the cache the frozen blocks run once in all."""
    per_block, blocks = block_parameters()
    frozen, top = per_block * (blocks - 1), per_block
    return 2 * frozen / (epochs if cached else 1) + 6 * top


def time_to_reach(epoch_end_s: list[float], accuracy: list[float], target: float) -> float | None:
    for seconds, value in zip(epoch_end_s, accuracy, strict=False):
        if value >= target:
            return seconds
    return None


def print_table(report: dict) -> None:
    rows = [
        ("wall time (s)", "wall_s", "{:.0f}"),
        ("training time (s)", "train_s", "{:.0f}"),
        ("time to baseline's final val acc (s)", "time_to_baseline_val_s", "{:.0f}"),
        ("real tokens/s", "tokens_per_s", "{:,.0f}"),
        ("peak RSS (MB)", "peak_rss_mb", "{:,.0f}"),
        ("test accuracy", "test_accuracy", "{:.4f}"),
        ("MFU (real tokens)", "mfu", "{:.1%}"),
    ]
    base, ours = report["baseline"], report["tunelab"]
    print(f"\n{report['case']}  (fp32 matmul peak {report['matmul_peak_gflops']:.0f} GFLOP/s)")
    print(f"{'':40} {'baseline':>12} {'tunelab':>12} {'ratio':>8}")
    for title, key, fmt in rows:
        b, t = base.get(key), ours.get(key)
        cells = [fmt.format(v) if v is not None else "-" for v in (b, t)]
        # speed-up: baseline time / tunelab time, or tunelab rate / baseline rate
        if b and t and key in ("wall_s", "train_s", "time_to_baseline_val_s"):
            ratio = f"{b / t:.2f}x"
        elif b and t and key == "tokens_per_s":
            ratio = f"{t / b:.2f}x"
        else:
            ratio = ""
        print(f"{title:40} {cells[0]:>12} {cells[1]:>12} {ratio:>8}")
