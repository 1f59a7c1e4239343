"""The optimizer every run of the loop trains with."""

import torch

from tunelab.config import TrainConfig
from tunelab.errors import TunelabError


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases and norm weights (1-D), as is usual for transformers."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise TunelabError("the method leaves no parameter trainable")
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr)
