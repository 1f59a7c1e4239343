"""Cache the output of the frozen lower blocks once, then train only the top for every epoch.

For `head` and `freeze` (seed 000: everything frozen but the last block, the final norm and the
head), the embeddings and lower blocks give the same output for a row in every epoch. We run
them once over the training and validation rows, keep each row's hidden states at the boundary
(unpadded, in memory, after a size check), and swap the model's embedding for a module that
returns the cached states and its block list for the trainable top blocks. The model's own
forward still builds the masks, positions and pooling, so any architecture tunelab describes
works. No library does this (Transformers, PEFT and TRL recompute the frozen layers every
step), hence written here.

The cache is computed in eval mode: dropout inside the frozen blocks is off (SmolLM2 and
Llama have none, so training is then exactly the same computation)."""

import hashlib
import itertools
import os
from contextlib import contextmanager, suppress
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from tunelab.data.micro_batches import FORWARD_TOKENS, micro_batches
from tunelab.models.anatomy import find_blocks


def first_trainable_block(model: nn.Module) -> int | None:
    """Index of the lowest block with a trainable parameter; None when the embeddings train
    (nothing below the boundary is frozen)."""
    backbone = model.base_model
    path, blocks = find_blocks(backbone)
    top = path.split(".")[0]
    for name, child in backbone.named_children():
        if name == top:
            break
        if any(p.requires_grad for p in child.parameters()):
            return None
    for i, block in enumerate(blocks):
        if any(p.requires_grad for p in block.parameters()):
            return i
    return len(blocks)


class CachedStates(nn.Module):
    """Stands in for the embedding: returns the cached boundary states of the current batch."""

    def __init__(self):
        super().__init__()
        self.current: torch.Tensor | None = None

    def forward(self, *args, **kwargs) -> torch.Tensor:
        return self.current


class Zeros(nn.Module):
    """Stands in for a second embedding added to the first (GPT-2's positions)."""

    def __init__(self, width: int):
        super().__init__()
        self.width = width

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.zeros(*ids.shape, self.width, device=ids.device)


class Passthrough(nn.Module):
    def forward(self, x, *args, **kwargs):
        return x


def parent_and_name(root: nn.Module, path: str) -> tuple[nn.Module, str]:
    parent, _, name = path.rpartition(".")
    return (root.get_submodule(parent) if parent else root), name


class ReachedBoundary(Exception):
    """Stops the caching forward pass at the first trainable block."""


@torch.no_grad()
def boundary_states(model, examples: list[dict], boundary: int, collate, batch_size: int):
    """Each row's hidden states entering block `boundary` (the first trainable one)."""
    backbone = model.base_model
    _, blocks = find_blocks(backbone)
    captured = {}
    hook_block = blocks[boundary - 1] if boundary else None

    def keep(module, args, output):
        captured["states"] = output[0] if isinstance(output, tuple) else output
        raise ReachedBoundary  # the trainable blocks above have nothing to give the cache

    handle = hook_block.register_forward_hook(keep)
    # One block for all rows, each row a view into it, instead of a small allocation per row
    # (on its own this did not lower the peak RSS of benchmark case (a); the slices below did).
    lengths = [len(e["input_ids"]) for e in examples]
    offsets = [0, *itertools.accumulate(lengths)]
    states, was_training = [], model.training
    # Rows of similar length together: almost no padding to compute.
    order = sorted(range(len(examples)), key=lambda i: lengths[i])
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = collate([{"input_ids": examples[i]["input_ids"]} for i in chunk])
            for part in micro_batches(batch, FORWARD_TOKENS):  # less memory held, same states
                with suppress(ReachedBoundary):
                    backbone(input_ids=part["input_ids"], attention_mask=part["attention_mask"])
                found = captured["states"]
                if not states:  # the first batch tells the width, dtype and device
                    store = found.new_empty(offsets[-1], found.shape[-1])
                    states = [store[offsets[i] : offsets[i + 1]] for i in range(len(examples))]
                rows, chunk = chunk[: len(found)], chunk[len(found) :]
                for j, i in enumerate(rows):
                    states[i].copy_(found[j, : lengths[i]])
    finally:
        handle.remove()
        model.train(was_training)
    return states


# compare sets it for its runs: the states of one model, boundary and rows are computed once and
# read back by every trial and seed of head or freeze (the split is fixed, so the rows are too)
STATES_FOLDER_VARIABLE = "TUNELAB_STATES_CACHE"


def states_key(model, examples: list[dict], boundary: int) -> str:
    """What the boundary states depend on: the frozen weights, the boundary and the rows."""
    backbone = model.base_model
    _, blocks = find_blocks(backbone)
    digest = hashlib.sha256(f"{boundary}|{torch.__version__}".encode())
    frozen = [backbone.get_input_embeddings(), *list(blocks)[:boundary]]
    with torch.no_grad():
        for module in frozen:
            for weight in module.parameters():
                digest.update(f"{weight.dtype}{tuple(weight.shape)}".encode())
                digest.update(weight.double().sum().cpu().numpy().tobytes())
    for example in examples:
        digest.update(torch.as_tensor(example["input_ids"], dtype=torch.int64).numpy().tobytes())
        digest.update(b"|")
    return digest.hexdigest()[:32]


def shared_states(model, examples: list[dict], boundary: int, collate, batch_size: int):
    """boundary_states, read from and written to $TUNELAB_STATES_CACHE when it is set."""
    folder = os.environ.get(STATES_FOLDER_VARIABLE)
    if not folder:
        return boundary_states(model, examples, boundary, collate, batch_size)
    path = Path(folder) / f"{states_key(model, examples, boundary)}.safetensors"
    if path.is_file():
        saved = load_file(path)
        store, offsets = saved["states"], saved["offsets"].tolist()
        return [store[offsets[i] : offsets[i + 1]] for i in range(len(examples))]
    states = boundary_states(model, examples, boundary, collate, batch_size)
    lengths = torch.tensor([0, *itertools.accumulate(len(s) for s in states)])
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.part")  # never a half-written file under the name
    save_file({"states": torch.cat(states), "offsets": lengths}, partial)
    partial.replace(path)
    return states


def estimated_bytes(examples: list[dict], hidden: int) -> int:
    return sum(len(e["input_ids"]) for e in examples) * hidden * 4


def cacheable(model) -> bool:
    """True when the embeddings and at least the lowest block are frozen (head, freeze)."""
    boundary = first_trainable_block(model)
    return boundary is not None and boundary > 0


@contextmanager
def frozen_prefix_cached(model, examples: list[dict], collate, batch_size: int):
    """Inside the block, `model` runs from cached states: rows must carry `cache_index` (their
    position in `examples`), which a forward pre-hook takes out of the inputs."""
    boundary = first_trainable_block(model)
    backbone = model.base_model
    path, blocks = find_blocks(backbone)
    states = shared_states(model, examples, boundary, collate, batch_size)
    cached = CachedStates()

    def use_cache(module, args, kwargs):
        index = kwargs.pop("cache_index")
        rows = [states[i] for i in index.tolist()]
        cached.current = pad_sequence(rows, batch_first=True).to(index.device)
        return args, kwargs

    top = path.split(".")[0]
    swaps, first = [], True
    for name, child in list(backbone.named_children()):
        if name == top:
            break
        if first:
            swaps.append((backbone, name, child, cached))
            first = False
        elif any(True for _ in child.parameters()):
            swaps.append((backbone, name, child, Zeros(model.config.hidden_size)))
        elif isinstance(child, nn.Dropout):
            swaps.append((backbone, name, child, Passthrough()))
    parent, name = parent_and_name(backbone, path)
    swaps.append((parent, name, blocks, nn.ModuleList(list(blocks)[boundary:])))
    for owner, attr, _, replacement in swaps:
        setattr(owner, attr, replacement)
    handle = model.register_forward_pre_hook(use_cache, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()
        for owner, attr, original, _ in swaps:
            setattr(owner, attr, original)
