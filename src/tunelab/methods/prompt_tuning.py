"""prompt_tuning: trainable soft-prompt embeddings before the input (PEFT)."""

from typing import Literal

from peft import PromptTuningConfig
from torch import nn

from tunelab.methods.base import VIRTUAL_TOKENS, MethodSpec, register
from tunelab.methods.peft_common import VirtualTokenSettings, prompt_learning_dims, wrap_with_peft
from tunelab.models.anatomy import Anatomy


class PromptTuningSettings(VirtualTokenSettings):
    name: Literal["prompt_tuning"] = "prompt_tuning"


def apply_prompt_tuning(
    model: nn.Module, settings: PromptTuningSettings, anatomy: Anatomy
) -> nn.Module:
    return wrap_with_peft(
        model,
        PromptTuningConfig,
        anatomy,
        num_virtual_tokens=settings.num_virtual_tokens,
        **prompt_learning_dims(model, settings.num_virtual_tokens),
    )


register(
    MethodSpec(
        "prompt_tuning",
        PromptTuningSettings,
        apply_prompt_tuning,
        "adapter",
        "soft prompt + head",
        # The soft prompt enters as embeddings, so decoders cannot find the last real token from
        # the ids: left padding puts it at the last position.
        left_padding=True,
        capabilities=frozenset({VIRTUAL_TOKENS}),
    )
)
