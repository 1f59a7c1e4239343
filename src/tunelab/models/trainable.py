"""The trained part of a model as tensors: what checkpoints and `trainable/` artefacts hold.

Sharded weights (train.distributed: fsdp) are gathered whole here and re-sharded on load, so a
checkpoint is the same file whatever the process count; with them every process must call."""

import torch
from torch import nn
from torch.distributed.tensor import DTensor, distribute_tensor


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only what training changes: the frozen weights are reproducible from the base model."""
    return {
        name: (p.full_tensor() if isinstance(p, DTensor) else p).detach().cpu().clone()
        for name, p in model.named_parameters()
        if p.requires_grad
    }


def load_trainable_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, value in state.items():
            param = params[name]
            if isinstance(param, DTensor):  # this process keeps its shard of the whole value
                value = distribute_tensor(
                    value, param.device_mesh, param.placements, src_data_rank=None
                )
            param.copy_(value)
