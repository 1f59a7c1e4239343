"""Comparing floating-point results that two code paths (or two CPUs' kernels) compute with
another summation order, FMA use or vector width: equal up to rounding, scaled to the tensor.

An element-wise rtol fails on an element near zero whose rounding error comes from the tensor's
larger entries (a sum of products rounds relative to its terms, not to its result): the fused
LoRA gradients differed by 5e-6 of each tensor's largest value on an AMX Xeon and failed rtol=1e-4
there, while passing on AVX2. A scaled bound holds on every CPU and still catches real bugs (a
wrong mask, scale or term moves whole tensors by percents)."""

import torch

# fp32 rounding is 6e-8; sums over a few thousand terms in another order stay within ~1e-5 of the
# largest value. 1e-4 leaves room for any x86 kernel and is still 1e3x below a real error.
REL = {torch.float32: 1e-4, torch.float64: 1e-10, torch.bfloat16: 2e-2, torch.float16: 5e-3}


def assert_close_to_scale(actual, expected, rel: float | None = None, msg: str = "") -> None:
    """max |actual - expected| <= rel * max |expected| (rel from the dtype unless given)."""
    actual, expected = torch.as_tensor(actual), torch.as_tensor(expected)
    assert actual.shape == expected.shape, f"{msg}: shape {actual.shape} != {expected.shape}"
    rel = REL[expected.dtype] if rel is None else rel
    worst = (actual.double() - expected.double()).abs().max().item()
    scale = expected.double().abs().max().item()
    assert worst <= rel * scale + 1e-30, (
        f"{msg}: largest difference {worst:.3g} is {worst / max(scale, 1e-30):.3g} of the "
        f"largest value {scale:.3g} (allowed {rel:g})"
    )
