"""Fine-tuning methods; importing this package registers every method file."""

from tunelab.methods import (  # noqa: F401 - registration side effect
    adapter,
    freeze,
    full,
    head,
    ia3,
    lora,
    prefix_tuning,
    prompt_tuning,
    prompting,
    qlora,
)
from tunelab.methods.base import (
    FULL_WEIGHTS,
    LOW_RANK,
    METHODS,
    NEW_HEAD_ONLY,
    QUANTIZED_BASE,
    VIRTUAL_TOKENS,
    MethodSpec,
    full_or_lora,
)

__all__ = [
    "FULL_WEIGHTS",
    "LOW_RANK",
    "METHODS",
    "NEW_HEAD_ONLY",
    "QUANTIZED_BASE",
    "VIRTUAL_TOKENS",
    "MethodSpec",
    "full_or_lora",
]
