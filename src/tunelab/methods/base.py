"""What a fine-tuning method is: settings, how it adapts a model, what it saves."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from torch import nn

from tunelab.config.settings import METHOD_SETTINGS, MethodSettings
from tunelab.models.anatomy import Anatomy
from tunelab.registry import Registry

ApplyFn = Callable[[nn.Module, MethodSettings, Anatomy], nn.Module]


# What a method does, as tasks and checks ask it (never by its name):
FULL_WEIGHTS = "full_weights"  # every weight trains (full)
LOW_RANK = "low_rank"  # a PEFT LoRA adapter on the frozen base (lora, qlora): TRL and PPO take it
QUANTIZED_BASE = "quantized_base"  # the frozen base is held in 4 bits (qlora)
VIRTUAL_TOKENS = "virtual_tokens"  # trained tokens put before each row (prompt, prefix tuning)
NEW_HEAD_ONLY = "new_head_only"  # only a new head trains (head): nothing to train on an LM


def full_or_lora(method: "MethodSpec") -> bool:
    """What TRL's trainers take as it is: full weights, or a PEFT LoRA (on a 4-bit base for
    qlora); the preference and RL tasks accept these."""
    return method.can(FULL_WEIGHTS) or method.can(LOW_RANK)


@dataclass(frozen=True)
class MethodSpec:
    name: str
    settings: type[MethodSettings]
    apply: ApplyFn | None  # None: nothing trains (prompting)
    # model: full HF model folder; adapter: PEFT adapter folder; trainable: the trainable tensors
    # only, re-applied on the base model at load (for modules PEFT does not know).
    # prompt: only the prompt (description and shots) for the untouched base model.
    artifact: Literal["model", "adapter", "trainable", "prompt"]
    summary: str
    left_padding: bool = False  # decoders must pad on the left (the input enters as embeddings)
    load_options: Callable[[MethodSettings], dict] | None = None  # extra from_pretrained kwargs
    build: Callable | None = None  # builds the whole classifier instead of a new head (prompting)
    merges: bool = False  # the trained weights fold into the base (export --merge, --int8)
    capabilities: frozenset[str] = frozenset()  # FULL_WEIGHTS, LOW_RANK, ... above

    def can(self, capability: str) -> bool:
        return capability in self.capabilities

    @property
    def trains(self) -> bool:
        return self.apply is not None

    def options(self, settings: MethodSettings) -> dict:
        return self.load_options(settings) if self.load_options else {}


METHODS: Registry[MethodSpec] = Registry("method")


def register(spec: MethodSpec) -> MethodSpec:
    """Register a method and its settings class (which the config's method union picks up)."""
    METHOD_SETTINGS.register(spec.name)(spec.settings)
    return METHODS.register(spec.name)(spec)


def set_trainable(modules: Iterable[nn.Module], trainable: bool) -> None:
    for module in modules:
        for param in module.parameters():
            param.requires_grad = trainable


def head_modules(model: nn.Module, anatomy: Anatomy) -> list[nn.Module]:
    return [getattr(model, name) for name in anatomy.head_names]
