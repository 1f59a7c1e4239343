"""head: feature-based tuning; the pretrained model is frozen and only the new head learns."""

from typing import Literal

from torch import nn

from tunelab.config.settings import MethodSettings
from tunelab.methods.base import NEW_HEAD_ONLY, MethodSpec, head_modules, register, set_trainable
from tunelab.models.anatomy import Anatomy


class HeadSettings(MethodSettings):
    name: Literal["head"] = "head"


def apply_head(model: nn.Module, settings: HeadSettings, anatomy: Anatomy) -> nn.Module:
    set_trainable([model], False)
    set_trainable(head_modules(model, anatomy), True)
    return model


register(
    MethodSpec(
        "head",
        HeadSettings,
        apply_head,
        "model",
        "new head only",
        capabilities=frozenset({NEW_HEAD_ONLY}),
    )
)
