"""ia3: learned rescaling vectors on keys, values and the feed-forward (PEFT's IA3)."""

from typing import Literal

from peft import IA3Config
from peft.utils.constants import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as PEFT_TARGETS
from torch import nn

from tunelab.config.settings import MethodSettings
from tunelab.methods.base import MethodSpec, register
from tunelab.methods.peft_common import wrap_with_peft
from tunelab.models.anatomy import Anatomy


class IA3Settings(MethodSettings):
    name: Literal["ia3"] = "ia3"


# Architectures PEFT has no IA3 defaults for: keys, values and the FFN's second linear.
EXTRA_TARGETS = {"distilbert": (["k_lin", "v_lin", "lin2"], ["lin2"])}


def apply_ia3(model: nn.Module, settings: IA3Settings, anatomy: Anatomy) -> nn.Module:
    model_type = model.config.model_type
    if model_type in PEFT_TARGETS or model_type not in EXTRA_TARGETS:
        return wrap_with_peft(model, IA3Config, anatomy)  # PEFT's per-architecture defaults
    targets, feedforward = EXTRA_TARGETS[model_type]
    return wrap_with_peft(
        model, IA3Config, anatomy, target_modules=targets, feedforward_modules=feedforward
    )


register(
    MethodSpec("ia3", IA3Settings, apply_ia3, "adapter", "rescaling vectors + head", merges=True)
)
