"""A rough training-memory estimate from the model's config alone (no weights loaded)."""

import os

from accelerate import init_empty_weights
from transformers import AutoConfig, AutoModel

from tunelab.doctor.findings import Finding
from tunelab.methods import FULL_WEIGHTS, QUANTIZED_BASE

ADAM_BYTES = 4 + 4 + 8  # fp32 weight copy being trained, its gradient, Adam's two moments


def parameter_count(path: str) -> int:
    config = AutoConfig.from_pretrained(path)
    with init_empty_weights():
        model = AutoModel.from_config(config)
    return sum(p.numel() for p in model.parameters())


def available_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_check(task) -> Finding:
    """Weights (4 bytes, or half a byte under 4-bit), the trainable share's gradient and Adam
    state, and activations of one micro-batch (about 34 bytes per token per hidden unit per
    layer in fp32, Korthikanti et al.'s estimate without recomputation)."""
    try:
        config = AutoConfig.from_pretrained(task.run.model_path)
        params = parameter_count(task.run.model_path)
    except (OSError, ValueError) as exc:
        return Finding("memory", "ok", f"not estimated ({str(exc).splitlines()[0]})")
    method, train = task.run.method, task.config.train
    weight_bytes = 0.5 if method.can(QUANTIZED_BASE) else 4.0
    trainable_share = 1.0 if method.can(FULL_WEIGHTS) else 0.05  # adapters, heads: a few %
    hidden = getattr(config, "hidden_size", 768)
    layers = getattr(config, "num_hidden_layers", 12)
    tokens = min(train.micro_batch_tokens or 10**9, train.batch_size * task.config.data.max_length)
    total = params * (weight_bytes + trainable_share * ADAM_BYTES) + 34 * tokens * hidden * layers
    ram = available_bytes()
    message = (
        f"about {total / 2**30:.1f} GiB to train ({params / 1e6:.0f}M parameters, "
        f"{method.name}, {tokens} tokens per pass) of {ram / 2**30:.0f} GiB here"
    )
    return Finding("memory", "warn" if total > 0.8 * ram else "ok", message)
