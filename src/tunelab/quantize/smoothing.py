"""SmoothQuant-style activation smoothing before dynamic INT8 (Xiao et al., 2023).

Dynamic INT8 quantizes each Linear's input with one scale for the whole tensor, so the few
channels that carry outlier activations (Llama's MLP output projection above all) crush the
resolution of every other channel. Smoothing divides each input channel j by
s_j = max|x_j|^alpha / max|W_j|^(1 - alpha) and multiplies the weight's column j by s_j: the
product is unchanged in exact arithmetic, the outliers move into the weights (which are
quantized per output channel), and both sides quantize well. The division is folded into the
layer that produces the input (the RMSNorm's weight, or the up projection's rows), so the
smoothed model has the same modules and the same cost.

Written here because neither torch nor Transformers ship it (torchao does, on its own quantized
tensor types that need torch.compile; SmoothQuant's reference code is GPU-only).
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

ALPHAS = (0.5, 0.65, 0.8, 0.9)


@dataclass(frozen=True)
class SmoothGroup:
    """Linears that read one input, and the module whose weight produces that input."""

    producer: nn.Module  # RMSNorm (weight per channel) or a Linear (rows per channel)
    consumers: tuple[nn.Linear, ...]
    key: str  # the first consumer's module name: where its scales are stored


def _llama_style(layer: nn.Module) -> bool:
    """Pre-norm decoder layers whose norms multiply by `weight` (Llama, Mistral, Qwen2/3).
    Gemma's norms multiply by (1 + weight), so a division would be wrong there."""
    needed = ("input_layernorm", "post_attention_layernorm", "self_attn", "mlp")
    if not all(hasattr(layer, name) for name in needed):
        return False
    attn, mlp = layer.self_attn, layer.mlp
    norm_name = type(layer.input_layernorm).__name__
    return (
        all(isinstance(getattr(attn, p, None), nn.Linear) for p in ("q_proj", "k_proj", "v_proj"))
        and all(isinstance(getattr(mlp, p, None), nn.Linear) for p in ("gate_proj", "up_proj"))
        and isinstance(getattr(mlp, "down_proj", None), nn.Linear)
        and norm_name.endswith("RMSNorm")
        and not norm_name.startswith("Gemma")
    )


def smooth_groups(model: nn.Module) -> list[SmoothGroup]:
    """The three smoothable inputs of every Llama-style layer: attention in, MLP in, MLP out.
    Empty for other architectures (they are quantized without smoothing)."""
    groups = []
    for name, layer in model.named_modules():
        if not _llama_style(layer):
            continue
        attn, mlp = layer.self_attn, layer.mlp
        groups += [
            SmoothGroup(
                layer.input_layernorm,
                (attn.q_proj, attn.k_proj, attn.v_proj),
                f"{name}.self_attn.q_proj",
            ),
            SmoothGroup(
                layer.post_attention_layernorm,
                (mlp.gate_proj, mlp.up_proj),
                f"{name}.mlp.gate_proj",
            ),
            SmoothGroup(mlp.up_proj, (mlp.down_proj,), f"{name}.mlp.down_proj"),
        ]
    return groups


@torch.no_grad()
def activation_peaks(model: nn.Module, groups: list[SmoothGroup], run_batches) -> dict:
    """Each group's largest absolute input per channel over the calibration batches
    (`run_batches(model)` runs them)."""
    peaks: dict[str, torch.Tensor] = {}

    def recorder(key: str):
        def record(_module, inputs):
            x = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(0).float()
            peaks[key] = torch.maximum(peaks[key], x) if key in peaks else x

        return record

    hooks = [g.consumers[0].register_forward_pre_hook(recorder(g.key)) for g in groups]
    try:
        run_batches(model)
    finally:
        for hook in hooks:
            hook.remove()
    return peaks


def smoothing_scales(groups: list[SmoothGroup], peaks: dict, alpha: float) -> dict:
    scales = {}
    for group in groups:
        weight_peak = torch.stack([c.weight.abs().amax(0) for c in group.consumers]).amax(0)
        x, w = peaks[group.key].clamp(min=1e-5), weight_peak.float().clamp(min=1e-5)
        scales[group.key] = (x**alpha / w ** (1 - alpha)).clamp(min=1e-5)
    return scales


@torch.no_grad()
def apply_smoothing(model: nn.Module, scales: dict) -> None:
    """Fold the scales in place: the producer's output divided, the consumers' columns multiplied."""
    for group in smooth_groups(model):
        s = scales[group.key].to(group.producer.weight.dtype)
        if isinstance(group.producer, nn.Linear):
            group.producer.weight.div_(s[:, None])
            if group.producer.bias is not None:
                group.producer.bias.div_(s)
        else:
            group.producer.weight.div_(s)
        for consumer in group.consumers:
            consumer.weight.mul_(s)


def mean_kl(reference: np.ndarray, other: np.ndarray) -> float:
    """How far the quantized model's class probabilities drift from full precision's."""
    eps = 1e-12
    return float((reference * (np.log(reference + eps) - np.log(other + eps))).sum(1).mean())
