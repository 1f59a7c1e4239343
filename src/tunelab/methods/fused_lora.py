"""A LoRA linear layer as one autograd node: frozen base, input dropout and low-rank update.

Why by hand: PEFT runs a LoRA layer as six autograd ops (base, dropout, A, B, scale, add), so
each of the seven LoRA layers of a Llama block makes extra passes over (tokens x width) tensors
and keeps the dropout's mask *and* its output for the backward. Here the scale and the add ride
on the GEMM (`addmm`), the dropout's 1/(1-p) is folded into the scale, and the backward keeps
the layer's input (one tensor shared by q, k and v) and a one-byte mask, recomputing the dropped
input. The mask is drawn as FastDropout draws it, so the numbers are PEFT's with FastDropout
(tests/test_fused_lora.py). PEFT has no fused path; Unsloth's fused LoRA is CUDA-only.
Anything else (DoRA, merged or disabled adapters, several active adapters, a bias on the LoRA
matrices, other base layers, autocast) runs PEFT's own forward.
"""

import types

import torch
from torch import nn

from tunelab.methods.fast_dropout import LEVELS, FastDropout


def is_4bit(base: nn.Module) -> bool:
    return getattr(base.weight, "quant_state", None) is not None


def dense_weight(base: nn.Module) -> torch.Tensor:
    """The base weight as a float matrix; a 4-bit one dequantized for the moment (as
    bitsandbytes' own matmul does in its forward and again in its backward)."""
    if is_4bit(base):
        from bitsandbytes.functional import dequantize_4bit

        return dequantize_4bit(base.weight.data, base.weight.quant_state)
    return base.weight


class LoraLinear(torch.autograd.Function):
    """out = x W^T + b + scale * ((x * keep) A^T) B^T, with keep None when nothing is dropped."""

    @staticmethod
    def forward(ctx, x, base, lora_a, lora_b, scale, keep):
        rows = x.reshape(-1, x.shape[-1])
        weight = dense_weight(base)
        bias = base.bias
        out = torch.mm(rows, weight.t()) if bias is None else torch.addmm(bias, rows, weight.t())
        dropped = rows if keep is None else rows * keep
        low = torch.mm(dropped, lora_a.t())
        out.addmm_(low, lora_b.t(), alpha=scale)
        ctx.save_for_backward(rows, keep, low, lora_a, lora_b)
        ctx.base, ctx.scale, ctx.shape = base, scale, x.shape
        return out.view(*x.shape[:-1], out.shape[-1])

    @staticmethod
    def backward(ctx, grad):
        rows, keep, low, lora_a, lora_b = ctx.saved_tensors
        grad = grad.reshape(-1, grad.shape[-1])
        grad_low = torch.mm(grad, lora_b).mul_(ctx.scale)
        grad_a = grad_b = grad_x = None
        if ctx.needs_input_grad[2]:
            grad_a = torch.mm(grad_low.t(), rows if keep is None else rows * keep)
        if ctx.needs_input_grad[3]:
            grad_b = torch.mm(grad.t(), low).mul_(ctx.scale)
        if ctx.needs_input_grad[0]:
            grad_x = torch.mm(grad, dense_weight(ctx.base))
            if keep is None:
                grad_x.addmm_(grad_low, lora_a)
            else:
                grad_x.add_(torch.mm(grad_low, lora_a).mul_(keep))
            grad_x = grad_x.view(ctx.shape)
        return grad_x, None, grad_a, grad_b, None, None


def fusable_base(base: nn.Module) -> bool:
    """A base layer the node computes exactly: a plain float Linear or a bitsandbytes 4-bit one
    (an 8-bit one, GPT-2's Conv1D and the rest keep PEFT's forward)."""
    return type(base) is nn.Linear or is_4bit(base)


def fusable_adapter(layer: nn.Module, x: torch.Tensor) -> str | None:
    """The one plain LoRA adapter this layer runs now, if the fused path computes it exactly."""
    if layer.disable_adapters or layer.merged or torch.is_autocast_enabled(x.device.type):
        return None  # autocast (bf16 on a GPU) would change dtypes inside the node: PEFT's path
    active = [name for name in layer.active_adapters if name in layer.lora_A]
    if len(active) != 1 or active[0] in getattr(layer, "lora_variant", {}):  # DoRA and co.
        return None
    name = active[0]
    a, b, base = layer.lora_A[name], layer.lora_B[name], layer.base_layer
    if a.bias is not None or b.bias is not None or base.weight.requires_grad:
        return None
    if getattr(base.weight, "packing_format_for_cpu", False):  # bitsandbytes' inference layout
        return None
    if x.dtype != a.weight.dtype:
        return None
    if is_4bit(base) and base.weight.quant_state.dtype != x.dtype:
        return None
    return name


def dropout_mask(dropout: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor | None, float] | None:
    """(keep mask or None, 1 / (1 - p)); None for a dropout this path does not draw."""
    if isinstance(dropout, nn.Identity) or not dropout.training:
        return None, 1.0
    if not isinstance(dropout, FastDropout):
        return None
    if dropout.dropped_levels == 0:
        return None, 1.0
    keep = dropout.keep_mask(x.shape, x.device).view(-1, x.shape[-1])
    return keep, LEVELS / (LEVELS - dropout.dropped_levels)


def fused_forward(layer: nn.Module, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    name = None if args or kwargs else fusable_adapter(layer, x)
    mask = None if name is None else dropout_mask(layer.lora_dropout[name], x)
    if mask is None:
        return type(layer).forward(layer, x, *args, **kwargs)
    keep, factor = mask
    a, b = layer.lora_A[name].weight, layer.lora_B[name].weight
    return LoraLinear.apply(x, layer.base_layer, a, b, layer.scaling[name] * factor, keep)


def fuse_lora_layers(model: nn.Module) -> int:
    """Run every LoRA linear layer through the fused node; returns how many. Only the forward
    changes: adapters save, load and merge as before."""
    fused = 0
    for module in model.modules():
        base = getattr(module, "base_layer", None)
        if hasattr(module, "lora_A") and isinstance(base, nn.Module) and fusable_base(base):
            module.forward = types.MethodType(fused_forward, module)
            fused += 1
    return fused
