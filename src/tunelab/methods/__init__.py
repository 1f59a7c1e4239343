"""Fine-tuning methods; importing this package registers every method file."""

from tunelab.methods import freeze, full, head, lora  # noqa: F401 - registration side effect
from tunelab.methods.base import METHODS, MethodSpec

__all__ = ["METHODS", "MethodSpec"]
