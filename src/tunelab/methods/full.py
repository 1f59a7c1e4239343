"""full: every parameter learns."""

from typing import Literal

from torch import nn

from tunelab.config.settings import MethodSettings
from tunelab.methods.base import FULL_WEIGHTS, MethodSpec, register, set_trainable
from tunelab.models.anatomy import Anatomy


class FullSettings(MethodSettings):
    name: Literal["full"] = "full"


def apply_full(model: nn.Module, settings: FullSettings, anatomy: Anatomy) -> nn.Module:
    set_trainable([model], True)
    return model


register(
    MethodSpec(
        "full",
        FullSettings,
        apply_full,
        "model",
        "all parameters",
        capabilities=frozenset({FULL_WEIGHTS}),
    )
)
