"""Frozen Linear weights held in bf16 while a bf16 run trains on a CPU.

CPU autocast casts a weight to bf16 at every call unless the weight is a leaf that requires grad
(torch caches only those casts), so in a LoRA, IA3 or freeze run every frozen projection was
converted again on each forward and each backward: on an AMX Xeon that cost more than the bf16
GEMMs saved (bf16 trained 5 % slower than fp32). Holding the frozen weights in bf16 for the
epoch removes those casts; trainable parameters, their gradients and the optimizer state stay
fp32, as autocast expects. Validation, checkpoints and the artefact see the fp32 weights again:
the bf16 copies live only inside the training epoch.

Written here because neither Accelerate nor PEFT keeps frozen weights in a lower precision than
the trainable ones (PEFT's `autocast_adapter_dtype` does the opposite: adapters up to fp32).
"""

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


def bf16_copies_wanted(mixed_precision: str, distributed: str) -> bool:
    """bf16 autocast on a CPU in one process or data-parallel ones; FSDP and DeepSpeed hold the
    weights in their own precision policy."""
    on_cpu = not torch.cuda.is_available()
    return mixed_precision == "bf16" and on_cpu and distributed not in ("fsdp", "deepspeed")


@contextmanager
def frozen_linears_in_bf16(model: nn.Module, enabled: bool) -> Iterator[int]:
    """Within the block, every frozen fp32 nn.Linear weight is a bf16 copy; yields how many."""
    kept: list[tuple[nn.Linear, nn.Parameter]] = []
    if enabled:
        for module in model.modules():
            if type(module) is not nn.Linear:
                continue
            weight = module.weight
            if not weight.requires_grad and weight.dtype == torch.float32:
                kept.append((module, weight))
                module.weight = nn.Parameter(weight.detach().to(torch.bfloat16), False)
    try:
        yield len(kept)
    finally:
        for module, weight in kept:
            module.weight = weight
