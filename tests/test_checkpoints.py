"""Checkpoints that always resume: a stop at every step of a checkpoint write, each damaged file,
a kill inside the swap of a real run (test_run_guards.py has the rest of a run's guards)."""

from pathlib import Path

import pytest
import torch
from tests.helpers import assert_same_run, train_tiny
from torch import nn

from tunelab.models.trainable import trainable_state
from tunelab.train import checkpoint as ckpt
from tunelab.train import loop


class Killed(BaseException):
    """A kill -9 at one point of the write: nothing after it runs (not even `except Exception`)."""


def filesystem_steps(monkeypatch, stop_at: int) -> list[str]:
    """Make the `stop_at`-th filesystem operation of a checkpoint write raise Killed; returns the
    names of the operations seen so far (its length counts them when nothing stops)."""
    seen: list[str] = []

    def wrap(owner, name):
        original = getattr(owner, name)

        def step(*args, **kwargs):
            seen.append(name)
            if len(seen) == stop_at:
                raise Killed(name)
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, step)

    for owner, name in [(Path, "rename"), (Path, "mkdir"), (Path, "touch"), (Path, "write_text"),
                        (ckpt.shutil, "rmtree"), (ckpt, "save_file"), (ckpt.torch, "save"),
                        (ckpt, "_fsync")]:  # fmt: skip
        wrap(owner, name)
    return seen


def tiny_model(value: float) -> nn.Module:
    model = nn.Linear(4, 2)
    with torch.no_grad():
        model.weight.fill_(value)
    return model


def save(folder: Path, value: float, step: int) -> None:
    ckpt.save_checkpoint(
        folder, trainable_state(tiny_model(value)), {"value": value}, {"epoch": step, "step": step}
    )


def restored_value(folder: Path, notes: list[str]) -> float | None:
    found = ckpt.restore_newest(folder, say=notes.append)
    if found is None:
        return None
    model = tiny_model(0.0)
    state = ckpt.load_checkpoint(found, model)
    assert model.weight[0, 0].item() == state["value"]
    return state["value"]


def count_write_steps(tmp_path, monkeypatch) -> int:
    with monkeypatch.context() as patch:
        seen = filesystem_steps(patch, stop_at=-1)
        save(tmp_path / "count" / "last", 1.0, 1)
        save(tmp_path / "count" / "last", 2.0, 2)
    return len(seen) // 2


def test_a_stop_at_every_step_of_a_write_leaves_a_checkpoint_that_resumes(tmp_path, monkeypatch):
    steps = count_write_steps(tmp_path, monkeypatch)
    assert steps >= 10
    for stop_at in range(1, steps + 1):
        folder = tmp_path / f"stop{stop_at}" / "last"
        save(folder, 1.0, 1)
        with monkeypatch.context() as patch:
            filesystem_steps(patch, stop_at)
            with pytest.raises(Killed):
                save(folder, 2.0, 2)
        notes: list[str] = []
        # the old copy, or the new one once it was complete: never none, never a mix
        assert restored_value(folder, notes) in (1.0, 2.0), stop_at
        assert len(notes) <= 1
        save(folder, 3.0, 3)  # the rotation goes on from any leftover state
        assert restored_value(folder, []) == 3.0
        assert sorted(p.name for p in folder.parent.iterdir()) == ["last", "last.prev"]


def test_the_old_rotations_leftover_is_used_or_cleaned(tmp_path):
    folder = tmp_path / "last"
    save(folder, 1.0, 1)
    folder.rename(tmp_path / "last.old")  # killed between the two renames of the old rotation
    notes: list[str] = []
    assert restored_value(folder, notes) == 1.0
    assert "resuming from" in notes[0]
    save(folder, 2.0, 2)
    assert not (tmp_path / "last.old").exists()


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {
    "weights truncated": lambda f: truncate(f / "trainable.safetensors"),
    "weights empty": lambda f: (f / "trainable.safetensors").write_bytes(b""),
    "weights flipped": lambda f: (f / "trainable.safetensors").write_bytes(
        (f / "trainable.safetensors").read_bytes()[:-1] + b"\x01"
    ),
    "state truncated": lambda f: truncate(f / "state.pt"),
    "state missing": lambda f: (f / "state.pt").unlink(),
    "manifest garbled": lambda f: (f / "manifest.json").write_text("{"),
    "marker missing": lambda f: (f / "COMPLETE").unlink(),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_checkpoint_falls_back_to_the_previous_with_one_line(tmp_path, damage):
    folder = tmp_path / "last"
    save(folder, 1.0, 1)
    save(folder, 2.0, 2)
    DAMAGE[damage](folder)
    notes: list[str] = []
    assert restored_value(folder, notes) == 1.0
    assert len(notes) == 1 and "not used" in notes[0] and "epoch 1" in notes[0], notes


def test_no_intact_checkpoint_means_a_fresh_start_said_in_one_line(tmp_path):
    folder = tmp_path / "last"
    save(folder, 1.0, 1)
    truncate(folder / "trainable.safetensors")
    notes: list[str] = []
    assert restored_value(folder, notes) is None
    assert len(notes) == 1 and "starting from the beginning" in notes[0]
    assert not folder.exists()


# --- the shared training loop, end to end ---------------------------------------------------

EXTRA = ["train.epochs=3"]


def stop_in_second_save_of_last(monkeypatch, operation: str):
    """Kill the run at `operation` inside the epoch-2 write of checkpoints/last."""
    original = ckpt.save_checkpoint

    def save_then_maybe_stop(folder, weights, extra=None, progress=None):
        if folder.name == "last" and progress and progress["epoch"] == 2:
            with monkeypatch.context() as patch:
                seen = filesystem_steps(patch, stop_at=-1)
                stop = {"first rename": 1, "second rename": 2}[operation]

                def renamed(self, target, seen=seen):
                    seen.append("rename")
                    if seen.count("rename") == stop:
                        raise Killed("rename")
                    return Path.__dict__["rename"](self, target)

                patch.setattr(Path, "rename", renamed)
                original(folder, weights, extra, progress)
        else:
            original(folder, weights, extra, progress)

    monkeypatch.setattr(loop, "save_checkpoint", save_then_maybe_stop)


@pytest.mark.parametrize("operation", ["first rename", "second rename"])
def test_a_kill_inside_the_swap_resumes_to_the_same_model(
    model_dirs, toy_csv, tmp_path, monkeypatch, straight_run, operation
):
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        stop_in_second_save_of_last(patch, operation)
        with pytest.raises(Killed):
            train_tiny(model_dirs["llama"], toy_csv, run_dir, "freeze", EXTRA)
    (run_dir / "metrics.jsonl").open("a").write('{"event": "train", "epo')  # a cut last line
    train_tiny(model_dirs["llama"], toy_csv, run_dir, "freeze", EXTRA, resume=True)
    assert_same_run(straight_run, run_dir)
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "best", "best.prev", "last", "last.prev"]  # fmt: skip


def test_a_damaged_last_checkpoint_resumes_from_the_one_before(
    model_dirs, toy_csv, tmp_path, monkeypatch, straight_run, capsys
):
    run_dir = tmp_path / "run"
    original = loop.Trainer.checkpoint

    def stop_after_epoch_2(self, state, scheduler, improved):
        original(self, state, scheduler, improved)
        if state.epoch == 2:
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(loop.Trainer, "checkpoint", stop_after_epoch_2)
        with pytest.raises(Killed):
            train_tiny(model_dirs["llama"], toy_csv, run_dir, "freeze", EXTRA)
    truncate(run_dir / "checkpoints" / "last" / "state.pt")
    capsys.readouterr()
    train_tiny(model_dirs["llama"], toy_csv, run_dir, "freeze", EXTRA, resume=True)
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "state.pt" in notes[0] and "epoch 1" in notes[0], notes
    assert_same_run(straight_run, run_dir)


def test_a_kill_before_the_first_checkpoint_resumes_to_the_same_model(
    model_dirs, toy_csv, tmp_path, tmp_path_factory, monkeypatch
):
    """LoRA's new weights are drawn after the before-evaluation, whose loaders draw a seed: a
    resume that reads eval_before.json back must draw the same weights (the evaluation draws
    from a random state of its own)."""
    straight = tmp_path_factory.mktemp("straight_lora") / "run"
    train_tiny(model_dirs["llama"], toy_csv, straight, "lora", EXTRA)
    run_dir, steps = tmp_path / "run", []
    original = loop.Trainer.loss_and_backward

    def killed_at_step_3(self, batch):
        steps.append(1)
        if len(steps) == 3:
            raise Killed
        return original(self, batch)

    with monkeypatch.context() as patch:
        patch.setattr(loop.Trainer, "loss_and_backward", killed_at_step_3)
        with pytest.raises(Killed):
            train_tiny(model_dirs["llama"], toy_csv, run_dir, "lora", EXTRA)
    assert (run_dir / "eval_before.json").is_file() and not (run_dir / "checkpoints").exists()
    train_tiny(model_dirs["llama"], toy_csv, run_dir, "lora", EXTRA, resume=True)
    assert_same_run(straight, run_dir)
