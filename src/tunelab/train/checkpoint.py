"""Atomic checkpoints of the trainable parameters and the optimizer, and resume from them.

The Hugging Face Trainer does not save atomically; here a checkpoint is written to a temporary
folder, fsynced, renamed into place, and only then marked complete. Resume skips unmarked ones.
"""

import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tunelab.models.trainable import load_trainable_state, trainable_state

COMPLETE = "COMPLETE"


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


def save_checkpoint(folder: Path, model: nn.Module, extra: dict | None = None) -> None:
    """Write trainable weights (safetensors) and training state, then mark the folder complete."""
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_file(trainable_state(model), staging / "trainable.safetensors")
    if extra is not None:
        torch.save(extra, staging / "state.pt")
    _fsync_tree(staging)
    old = folder.with_name(folder.name + ".old")
    if folder.exists():
        folder.rename(old)
    staging.rename(folder)
    (folder / COMPLETE).touch()
    shutil.rmtree(old, ignore_errors=True)


def is_complete(folder: Path) -> bool:
    return (folder / COMPLETE).is_file()


def load_checkpoint(folder: Path, model: nn.Module) -> dict:
    load_trainable_state(model, load_file(folder / "trainable.safetensors"))
    state = folder / "state.pt"
    # Our own file, but loaded with weights_only all the same: nothing is unpickled.
    return torch.load(state, weights_only=True) if state.exists() else {}
