"""Checkpoints that always resume: written to a staging folder, checksummed, swapped into place,
and read back from the newest intact copy.

The Hugging Face Trainer writes into its checkpoint folder directly; tunelab's loop and PPO write
`<name>.tmp` (files, manifest.json with each file's size and SHA-256, then COMPLETE), fsync it,
move the current `<name>` to `<name>.prev` and `<name>.tmp` to `<name>`. A kill at any point
leaves at least one intact copy among the three; `restore_newest` verifies them, puts the newest
intact one back at `<name>` and says in one line when it was not `<name>` itself."""

import hashlib
import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from tunelab.errors import TunelabError
from tunelab.models.trainable import load_trainable_state

COMPLETE = "COMPLETE"
MANIFEST = "manifest.json"
WEIGHTS = "trainable.safetensors"
STATE = "state.pt"
STAGING, PREVIOUS, RESTORE = ".tmp", ".prev", ".restore"
LEGACY = ".old"  # the rotation before this one


def sibling(folder: Path, suffix: str) -> Path:
    return folder.with_name(folder.name + suffix)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_staged(
    staging: Path, weights: dict[str, torch.Tensor], extra: dict | None, progress: dict
) -> None:
    """Every file of a checkpoint, its manifest, then COMPLETE: all inside the staging folder."""
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_file(weights, staging / WEIGHTS)
    if extra is not None:
        torch.save(extra, staging / STATE)
    files = {
        p.name: {"size": p.stat().st_size, "sha256": file_digest(p)} for p in staging.iterdir()
    }
    (staging / MANIFEST).write_text(json.dumps({**progress, "files": files}))
    (staging / COMPLETE).touch()
    for path in [*staging.iterdir(), staging]:
        _fsync(path)


def save_checkpoint(
    folder: Path,
    weights: dict[str, torch.Tensor],
    extra: dict | None = None,
    progress: dict | None = None,
) -> None:
    """Write trainable weights (models.trainable.trainable_state, safetensors) and training
    state; `progress` (epoch, step) goes into the manifest so the newest intact copy can be told
    apart from an older one."""
    staging, previous = sibling(folder, STAGING), sibling(folder, PREVIOUS)
    write_staged(staging, weights, extra, progress or {})
    shutil.rmtree(previous, ignore_errors=True)
    if folder.exists():
        folder.rename(previous)  # kept: the fallback if `folder` is later found damaged
    staging.rename(folder)
    _fsync(folder.parent)
    shutil.rmtree(sibling(folder, LEGACY), ignore_errors=True)


def damage(folder: Path) -> str | None:
    """Why a checkpoint folder cannot be trusted, or None when every file checks out."""
    if not folder.is_dir():
        return "missing"
    if not (folder / COMPLETE).is_file():
        return "incomplete (no COMPLETE marker)"
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        return None  # written before manifests existed: COMPLETE is all there is to check
    try:
        files = json.loads(manifest_path.read_text())["files"]
    except (ValueError, KeyError, TypeError):
        return f"{MANIFEST} is unreadable"
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != expected["size"]:
            return f"{name} has {path.stat().st_size} bytes, expected {expected['size']}"
        if file_digest(path) != expected["sha256"]:
            return f"{name} does not match its checksum"
    return None


def progress_of(folder: Path) -> dict:
    try:
        return {
            k: v for k, v in json.loads((folder / MANIFEST).read_text()).items() if k != "files"
        }
    except (OSError, ValueError):
        return {}


def describe(folder: Path) -> str:
    progress = progress_of(folder)
    where = ", ".join(f"{k} {v}" for k, v in progress.items())
    return f"{folder}" + (f" ({where})" if where else "")


def restore_newest(folder: Path, say=print) -> Path | None:
    """Put the newest intact copy of a checkpoint at `folder` and return it (None: no intact
    copy; the caller starts afresh). One line says what happened when `folder` itself was not
    the one used: a damaged file, a kill in the middle of a swap."""
    candidates = [folder, *(sibling(folder, s) for s in (STAGING, PREVIOUS, LEGACY, RESTORE))]
    present = [c for c in candidates if c.exists()]
    if not present:
        return None
    problems = {c: damage(c) for c in present}
    intact = [c for c in present if problems[c] is None]
    if not intact:
        reasons = "; ".join(f"{c.name}: {problems[c]}" for c in present)
        say(f"no intact checkpoint at {folder} ({reasons}); starting from the beginning")
        for candidate in present:
            shutil.rmtree(candidate, ignore_errors=True)
        return None
    newest = max(intact, key=lambda c: progress_of(c).get("step", -1))
    if newest != folder:
        reason = problems.get(folder) or "a save was stopped after writing a newer copy"
        say(f"checkpoint {folder} not used ({reason}); resuming from {describe(newest)}")
        promote(newest, folder, keep_current=folder in intact)
    previous = sibling(folder, PREVIOUS)
    for candidate in candidates[1:]:
        if candidate.exists() and (candidate != previous or damage(candidate) is not None):
            shutil.rmtree(candidate, ignore_errors=True)  # stale or damaged copies go
    return folder


def promote(newest: Path, folder: Path, keep_current: bool) -> None:
    """Move `newest` to `folder`; an intact current copy becomes the previous one."""
    staged = sibling(folder, RESTORE)
    if newest != staged:
        shutil.rmtree(staged, ignore_errors=True)
        newest.rename(staged)
    previous = sibling(folder, PREVIOUS)
    if keep_current:
        shutil.rmtree(previous, ignore_errors=True)
        folder.rename(previous)
    else:
        shutil.rmtree(folder, ignore_errors=True)
    staged.rename(folder)


def is_complete(folder: Path) -> bool:
    return damage(folder) is None


def load_checkpoint(folder: Path, model: nn.Module) -> dict:
    try:
        load_trainable_state(model, load_file(folder / WEIGHTS))
    except (KeyError, RuntimeError) as exc:
        raise TunelabError(
            f"{folder} holds other trainable weights than this config's model ({exc}); "
            "resume with the config the run started with"
        ) from None
    state = folder / STATE
    # Our own file, but loaded with weights_only all the same: nothing is unpickled.
    return torch.load(state, weights_only=True) if state.exists() else {}
