"""freeze: the seed-000 recipe; the new head, the top k blocks and the final norm learn."""

from typing import Literal

from pydantic import Field
from torch import nn

from tunelab.config.settings import MethodSettings
from tunelab.errors import TunelabError
from tunelab.methods.base import MethodSpec, head_modules, register, set_trainable
from tunelab.models.anatomy import Anatomy


class FreezeSettings(MethodSettings):
    name: Literal["freeze"] = "freeze"
    k: int = Field(1, ge=0, description="Number of top transformer blocks that train.")


def apply_freeze(model: nn.Module, settings: FreezeSettings, anatomy: Anatomy) -> nn.Module:
    if settings.k > len(anatomy.blocks):  # it trained every block without a word
        raise TunelabError(
            f"method.k={settings.k}: the model has {len(anatomy.blocks)} transformer blocks"
        )
    top_blocks = list(anatomy.blocks)[len(anatomy.blocks) - settings.k :] if settings.k else []
    set_trainable([model], False)
    set_trainable([*head_modules(model, anatomy), *top_blocks, *anatomy.post_blocks], True)
    return model


register(
    MethodSpec("freeze", FreezeSettings, apply_freeze, "model", "head + top k blocks + final norm")
)
