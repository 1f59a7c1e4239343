"""train.distributed: fsdp, on torch's FSDP2 (`fully_shard`) for tunelab's loop.

Accelerate 1.15 turns its FSDP plugin on only for GPU process groups, so on CPU (gloo) the loop
calls torch's `fully_shard` itself: one shard unit per transformer block (found by the model
anatomy), then the root. Checkpoints hold full tensors (weights gathered by
`models.trainable`, the optimizer through torch.distributed.checkpoint's full state dict, keyed
by parameter name), so a run resumes with any process count. At the end `release` gathers the
weights for good, so evaluation and the saved artefact see a plain model, as after DDP."""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import DeviceMesh, init_device_mesh
from torch.distributed.fsdp import CPUOffloadPolicy, FSDPModule, MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor

from tunelab.config import TrainConfig
from tunelab.errors import TunelabError
from tunelab.models.anatomy import describe

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def device_mesh(shard: str) -> DeviceMesh:
    """full: one dimension over every process; hybrid: (nodes, processes per node), the weights
    sharded within a node and replicated across nodes (torchrun's LOCAL_WORLD_SIZE)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    world = torch.distributed.get_world_size()
    if shard == "full":
        return init_device_mesh(device, (world,))
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    return init_device_mesh(
        device, (world // per_node, per_node), mesh_dim_names=("nodes", "shard")
    )


def shard_model(model: nn.Module, config: TrainConfig, precision: str) -> nn.Module:
    """The model sharded in place across this run's processes (one process: a mesh of one)."""
    if config.fsdp.cpu_offload and not torch.cuda.is_available():
        raise TunelabError("train.fsdp.cpu_offload: without a GPU the weights are in CPU memory")
    if any(type(p).__name__ == "Params4bit" for p in model.parameters()):
        raise TunelabError("train.distributed=fsdp cannot shard 4-bit weights; use ddp for qlora")
    if not torch.distributed.is_initialized():  # one process without torchrun: a group of one
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(
            backend, store=torch.distributed.HashStore(), rank=0, world_size=1
        )
    options = {"mesh": device_mesh(config.fsdp.shard)}
    if precision in DTYPES:  # FSDP casts the gathered weights itself; autocast is not used
        options["mp_policy"] = MixedPrecisionPolicy(DTYPES[precision], torch.float32)
    if config.fsdp.cpu_offload:
        options["offload_policy"] = CPUOffloadPolicy()
    if config.fsdp.wrap == "blocks":
        for block in describe(model).blocks:
            fully_shard(block, **options)
    fully_shard(model, **options)
    return model


def full_value(tensor: torch.Tensor) -> torch.Tensor:
    """A sharded tensor gathered (every process must call it), or the tensor itself."""
    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


def most_over_processes(value: int) -> int:
    total = torch.tensor(value)
    torch.distributed.all_reduce(total, op=torch.distributed.ReduceOp.MAX)
    return int(total)


def shard_units(model: nn.Module) -> list[FSDPModule]:
    return [m for m in model.modules() if isinstance(m, FSDPModule)]


@contextmanager
def gathered_for_eval(model: nn.Module, sharded: bool) -> Iterator[None]:
    """Validation with every weight gathered first, so forward passes need no collective and a
    task may run a different number of them on each process (its share of the rows, cut by
    length). Costs the whole model in each process while it runs."""
    if not sharded:
        yield
        return
    units = shard_units(model)
    for unit in units:
        unit.unshard()
        unit.set_reshard_after_forward(False, recurse=False)
    try:
        yield
    finally:
        for unit in units:  # fully_shard's default: the root keeps its weights after forward
            unit.reshard()
            unit.set_reshard_after_forward(unit is not model, recurse=False)


def optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """The whole optimizer state by parameter name, on the main process (all must call it)."""
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_optimizer_state_dict(model, optimizer, options=options)


def load_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """A saved full state, re-sharded over this run's processes (their count may differ)."""
    options = StateDictOptions(full_state_dict=True)
    set_optimizer_state_dict(model, optimizer, state, options=options)


def release(model: nn.Module) -> nn.Module:
    """Gather every weight for good (fp32, tied weights kept tied) and take FSDP's hooks off,
    so the model is a plain module again on every process. Written by hand: FSDP2 has no public
    undo; this uses the hook handles its state keeps (torch 2.13)."""
    units = shard_units(model)
    for unit in units:
        unit.reshard()  # every weight back to its sharded fp32 DTensor
    for unit in units:
        state = unit._get_fsdp_state()
        state._pre_forward_hook_handle.remove()
        state._post_forward_hook_handle.remove()
        group = state._fsdp_param_group
        if group is not None:
            saving = group._module_to_pre_save_state_dict_hook_handle.values()
            loading = group._module_to_pre_load_state_dict_hook_handle.values()
            for handle in [*saving, *loading]:
                handle.remove()
        unit.__class__ = next(c for c in type(unit).__bases__ if c is not FSDPModule)
    gathered: dict[int, nn.Parameter] = {}
    for module in model.modules():  # the same order on every process: the gathers pair up
        for name, param in list(module.named_parameters(recurse=False)):
            if isinstance(param, DTensor):
                if id(param) not in gathered:
                    full = param.full_tensor().detach().clone()
                    gathered[id(param)] = nn.Parameter(full, requires_grad=param.requires_grad)
                setattr(module, name, gathered[id(param)])
    return model
