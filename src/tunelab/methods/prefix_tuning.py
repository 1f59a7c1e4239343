"""prefix_tuning: trainable key/value prefixes in every attention layer (PEFT)."""

import inspect
from typing import Literal

from peft import PrefixTuningConfig
from torch import nn

from tunelab.errors import TunelabError
from tunelab.methods.base import VIRTUAL_TOKENS, MethodSpec, register
from tunelab.methods.peft_common import VirtualTokenSettings, prompt_learning_dims, wrap_with_peft
from tunelab.models.anatomy import Anatomy


class PrefixTuningSettings(VirtualTokenSettings):
    name: Literal["prefix_tuning"] = "prefix_tuning"


def apply_prefix_tuning(
    model: nn.Module, settings: PrefixTuningSettings, anatomy: Anatomy
) -> nn.Module:
    backbone = type(model.base_model)
    if "past_key_values" not in inspect.signature(backbone.forward).parameters:
        raise TunelabError(
            "prefix_tuning needs attention that takes key/value prefixes; "
            f"{backbone.__name__} has none"
        )
    return wrap_with_peft(
        model,
        PrefixTuningConfig,
        anatomy,
        num_virtual_tokens=settings.num_virtual_tokens,
        **prompt_learning_dims(model, settings.num_virtual_tokens),
    )


register(
    MethodSpec(
        "prefix_tuning",
        PrefixTuningSettings,
        apply_prefix_tuning,
        "adapter",
        "key/value prefixes + head",
        capabilities=frozenset({VIRTUAL_TOKENS}),
    )
)
