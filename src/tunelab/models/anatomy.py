"""Where the blocks, the final norm and the new head live, found by structure, not by name
tables."""

from dataclasses import dataclass

from torch import nn
from transformers import PreTrainedModel
from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

# Query projections across architectures: Llama/Mistral q_proj, BERT query, DistilBERT q_lin,
# GPT-2 c_attn (fused q/k/v: the closest it has).
QUERY_PROJECTIONS = ("q_proj", "query", "q_lin", "c_attn")


@dataclass(frozen=True)
class Anatomy:
    is_encoder: bool
    blocks: nn.ModuleList
    post_blocks: list[nn.Module]  # final norm (decoders) or pooler (BERT): above the blocks
    head_names: list[str]  # top-level modules of the classifier that are not the backbone
    generative: bool = False  # a causal LM: its LM head is pretrained, not a new head


def find_blocks(backbone: nn.Module) -> tuple[str, nn.ModuleList]:
    """The transformer block list is the longest ModuleList of the backbone."""
    lists = [(n, m) for n, m in backbone.named_modules() if isinstance(m, nn.ModuleList)]
    if not lists:
        raise ValueError(f"{type(backbone).__name__} has no list of transformer blocks")
    return max(lists, key=lambda item: len(item[1]))


def describe(model: PreTrainedModel) -> Anatomy:
    backbone = model.base_model
    blocks_path, blocks = find_blocks(backbone)
    top = blocks_path.split(".")[0]
    children = list(backbone.named_children())
    after = [m for n, m in children[[n for n, _ in children].index(top) + 1 :]]
    # Our MeanPoolingClassifier is a plain nn.Module: not generative.
    generative = bool(getattr(model, "can_generate", lambda: False)())
    head_names = [
        name
        for name, module in model.named_children()
        if module is not backbone and any(True for _ in module.parameters()) and not generative
    ]
    return Anatomy(
        is_encoder=model.config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES,
        blocks=blocks,
        post_blocks=after,
        head_names=head_names,
        generative=generative,
    )


def query_projections(model: nn.Module) -> list[str]:
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    found = [n for n in QUERY_PROJECTIONS if n in names]
    if not found:
        raise ValueError(f"no query projection found in {type(model).__name__}")
    return found[:1]
