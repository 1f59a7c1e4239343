"""lora: low-rank updates on chosen projections (PEFT); the new head trains in full."""

from typing import Literal

from peft import LoraConfig
from pydantic import Field
from torch import nn

from tunelab.config.settings import MethodSettings
from tunelab.methods.base import LOW_RANK, MethodSpec, register
from tunelab.methods.fast_dropout import speed_up_lora_dropout
from tunelab.methods.fused_lora import fuse_lora_layers
from tunelab.methods.peft_common import wrap_with_peft
from tunelab.models.anatomy import Anatomy, query_projections


class LoraSettings(MethodSettings):
    name: Literal["lora"] = "lora"
    r: int = Field(8, ge=1, description="Rank of the update.")
    alpha: float = Field(16, gt=0, description="Scale: the update is multiplied by alpha / r.")
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["query", "all-linear"] = Field(
        "query", description="'query' (the seed-001 choice), 'all-linear', or module names."
    )
    use_dora: bool = Field(False, description="Weight-decomposed LoRA (DoRA).")


def lora_config_kwargs(settings: LoraSettings, model: nn.Module) -> dict:
    """LoraConfig arguments; shared with qlora."""
    targets = settings.target_modules
    if targets == "query":
        targets = query_projections(model.base_model)
    return {
        "r": settings.r,
        "lora_alpha": settings.alpha,
        "lora_dropout": settings.dropout,
        "target_modules": targets,
        "use_dora": settings.use_dora,
    }


def apply_lora(model: nn.Module, settings: LoraSettings, anatomy: Anatomy) -> nn.Module:
    model = wrap_with_peft(model, LoraConfig, anatomy, **lora_config_kwargs(settings, model))
    speed_up_lora_dropout(model)
    fuse_lora_layers(model)
    return model


register(
    MethodSpec(
        "lora",
        LoraSettings,
        apply_lora,
        "adapter",
        "low-rank adapters + head",
        merges=True,
        capabilities=frozenset({LOW_RANK}),
    )
)
