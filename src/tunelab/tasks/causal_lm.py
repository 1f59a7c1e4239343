"""The loss shared by the generative tasks (sft, pretrain): next-token cross-entropy on the
positions whose label is not -100 (Transformers shifts the labels inside the model)."""

import torch

# Methods that adapt a causal LM without a new head (`head` has nothing to train there); the
# prompting baselines are the base model, prompted.
GENERATIVE_METHODS = frozenset(
    {
        "full",
        "freeze",
        "lora",
        "qlora",
        "ia3",
        "prompt_tuning",
        "prefix_tuning",
        "adapter",
        "zero_shot",
        "few_shot",
    }  # fmt: skip
)


def causal_lm_loss(model: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, None]:
    return model(**batch).loss, None
