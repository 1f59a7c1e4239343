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
from tunelab.methods.base import METHODS, MethodSpec

__all__ = ["METHODS", "MethodSpec"]
