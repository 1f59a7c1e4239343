"""A short measurement behind train.precision=auto on a CPU with native bf16: is a bf16 training
step faster than fp32 *here*? Native bf16 is necessary, not sufficient: on an AMX Xeon a bare
bf16 GEMM ran ~6x fp32, yet autocast as first wired trained 5 % slower (the casts of fp32
weights around each GEMM cost more than the GEMM saved); on a Zen 5 EPYC (AVX512-BF16, no AMX)
the same step ran 1.8-2x fp32. So the choice is measured, once per CPU, torch build and thread
count, and cached (about a second).

The probe is one LoRA projection of a small decoder's width (576 -> 1536, rank 16, 1,024 tokens),
forward and backward, as the trainer runs it: fp32, or under bf16 autocast, with the frozen weight
held in bf16 (tunelab's loop: `train/bf16_weights.py`) or cast at every call (TRL's trainers and
PPO, which keep it fp32).

Written here because neither torch nor Accelerate chooses a precision by speed.
"""

import json
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from tunelab.files import write_whole
from tunelab.hardware import this_cpu
from tunelab.models.embedded import cache_root

TOKENS, WIDTH, OUT, RANK = 1024, 576, 1536, 16
REPEATS, WARMUP = 7, 2


def cache_file() -> Path:
    return cache_root() / "precision_probe.json"


def probe_key(bf16_weights: bool) -> str:
    cpu = this_cpu()
    path = "bf16 weights" if bf16_weights else "fp32 weights"
    threads = str(torch.get_num_threads())
    return "|".join([cpu.model, *sorted(cpu.flags), torch.__version__, threads, path])


def step_seconds(bf16: bool, bf16_weights: bool = True) -> float:
    """The best time of a LoRA projection's forward and backward, fp32 or bf16 (its frozen
    weight stored in bf16, or in fp32 and cast by autocast at each call)."""
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(OUT, WIDTH, generator=generator) / WIDTH**0.5
    if bf16 and bf16_weights:
        weight = weight.to(torch.bfloat16)
    lora_a = (torch.randn(RANK, WIDTH, generator=generator) / WIDTH**0.5).requires_grad_()
    lora_b = (torch.randn(OUT, RANK, generator=generator) / RANK**0.5).requires_grad_()
    x = torch.randn(TOKENS, WIDTH, generator=generator).requires_grad_()
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
    best = float("inf")
    for repeat in range(WARMUP + REPEATS):
        start = time.perf_counter()
        with autocast:
            out = torch.nn.functional.linear(x, weight) + (x @ lora_a.t()) @ lora_b.t()
            loss = out.float().square().mean()
        loss.backward()
        if repeat >= WARMUP:
            best = min(best, time.perf_counter() - start)
    return best


KNOWN: dict[str, float] = {}  # this process's answers: a run asks several times (loop, record)


def bf16_step_speedup(bf16_weights: bool) -> float:
    """fp32 time / bf16 time of the probe on this machine, measured once and cached."""
    key = probe_key(bf16_weights)
    if key not in KNOWN:
        KNOWN[key] = cached_or_measured(key, bf16_weights)
    return KNOWN[key]


def cached_or_measured(key: str, bf16_weights: bool) -> float:
    path = cache_file()
    cached = json.loads(path.read_text()) if path.is_file() else {}
    if key not in cached:
        cached[key] = step_seconds(bf16=False) / step_seconds(True, bf16_weights)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_whole(path, json.dumps(cached, indent=2))  # another process may probe at once
    return cached[key]
