"""adapter: Houlsby bottleneck adapters in every block; only they and the head train.

Written by hand: PEFT has no bottleneck adapter, and AdapterHub's `adapters` pins
transformers 4.57 while tunelab pins 5.x."""

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from tunelab.config.settings import MethodSettings
from tunelab.errors import TunelabError
from tunelab.methods.base import MethodSpec, head_modules, register, set_trainable
from tunelab.models.anatomy import Anatomy

# The projection that closes each sublayer, before the residual add: attention output and
# FFN output (Llama o_proj/down_proj, GPT-2 c_proj, BERT *.output.dense, DistilBERT out_lin/lin2).
SUBLAYER_OUTPUTS = ("o_proj", "down_proj", "c_proj", "output.dense", "out_lin", "lin2")


class AdapterSettings(MethodSettings):
    name: Literal["adapter"] = "adapter"
    bottleneck: int = Field(64, ge=1, description="Width of the bottleneck.")


class Bottleneck(nn.Module):
    """Wrapped sublayer output + up(gelu(down(output))); starts as the identity (up = 0)."""

    def __init__(self, wrapped: nn.Module, hidden: int, bottleneck: int):
        super().__init__()
        self.wrapped = wrapped
        self.down = nn.Linear(hidden, bottleneck)
        self.up = nn.Linear(bottleneck, hidden)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, *args, **kwargs) -> torch.Tensor:
        out = self.wrapped(*args, **kwargs)
        return out + self.up(nn.functional.gelu(self.down(out)))


def sublayer_outputs(block: nn.Module) -> list[str]:
    return [name for name, _ in block.named_modules() if name.endswith(SUBLAYER_OUTPUTS)]


def apply_adapter(model: nn.Module, settings: AdapterSettings, anatomy: Anatomy) -> nn.Module:
    set_trainable([model], False)
    hidden = model.config.hidden_size
    for block in anatomy.blocks:
        names = sublayer_outputs(block)
        if not names:
            raise TunelabError(
                f"adapter: no sublayer output projection found in {type(block).__name__}"
            )
        for name in names:
            parent_name, _, child = name.rpartition(".")
            parent = block.get_submodule(parent_name) if parent_name else block
            setattr(parent, child, Bottleneck(getattr(parent, child), hidden, settings.bottleneck))
    set_trainable(head_modules(model, anatomy), True)
    return model


register(
    MethodSpec("adapter", AdapterSettings, apply_adapter, "trainable", "bottleneck adapters + head")
)
