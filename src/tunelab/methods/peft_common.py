"""Shared by the PEFT methods: wrap the classifier so that the new head trains in full."""

from peft import PeftConfig, TaskType, get_peft_model
from pydantic import Field
from torch import nn

from tunelab.config.settings import MethodSettings
from tunelab.errors import TunelabError
from tunelab.models.anatomy import Anatomy


def wrap_with_peft(
    model: nn.Module, config_cls: type[PeftConfig], anatomy: Anatomy, **settings
) -> nn.Module:
    """PEFT adapters on the backbone; a classifier's head (new, random) goes into
    modules_to_save; a causal LM keeps its pretrained LM head frozen."""
    task_type = TaskType.CAUSAL_LM if anatomy.generative else TaskType.SEQ_CLS
    config = config_cls(task_type=task_type, modules_to_save=list(anatomy.head_names), **settings)
    return get_peft_model(model, config)


def prompt_learning_dims(model: nn.Module, num_virtual_tokens: int) -> dict:
    """Sizes PEFT's prompt methods need; read through the config's aliases (DistilBERT's `dim`).
    Virtual tokens that fill the model's context leave no room for a row: one line."""
    config = model.config
    context = getattr(config, "max_position_embeddings", None)
    if context and num_virtual_tokens >= context:
        raise TunelabError(
            f"method.num_virtual_tokens={num_virtual_tokens}: the model's context is {context} "
            "tokens, and the rows need room beside the virtual ones"
        )
    return {
        "token_dim": config.hidden_size,
        "num_attention_heads": config.num_attention_heads,
        "num_layers": config.num_hidden_layers,
    }


class VirtualTokenSettings(MethodSettings):
    """Settings shared by prompt and prefix tuning."""

    num_virtual_tokens: int = Field(20, ge=1, description="Number of virtual tokens learned.")
