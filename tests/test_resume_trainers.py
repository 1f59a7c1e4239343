"""Resume after a kill for the trainers other than the shared loop: TRL's (reward model) and PPO.
A kill right after a checkpoint, a damaged newest checkpoint, and a finished run resumed."""

import json

import pytest
from tests.test_preference import overrides, pairs_file  # noqa: F401 - the fixture
from transformers import TrainerCallback

from tunelab.pipeline import load_config, run
from tunelab.train import ppo as ppo_trainer
from tunelab.train import trl_bridge


class Killed(BaseException):
    """A kill -9: nothing after it runs."""


def after(run_dir) -> dict:
    return json.loads((run_dir / "eval_after.json").read_text())


def reward_config(pairs, run_dir):
    return load_config(None, overrides("reward", pairs, run_dir, "lora"))  # 2 epochs


@pytest.fixture(scope="module")
def straight_reward(pairs_file, tmp_path_factory):  # noqa: F811
    run_dir = tmp_path_factory.mktemp("reward") / "straight"
    run(reward_config(pairs_file, run_dir))
    return run_dir


def kill_after_save(monkeypatch, epoch: int) -> None:
    """TRL writes checkpoint-N, then calls on_save: the kill lands right after that write."""

    def on_save(self, args, state, control, **kwargs):
        if round(state.epoch) == epoch:
            raise Killed

    monkeypatch.setattr(trl_bridge.TimeLimit, "on_save", on_save, raising=False)
    assert issubclass(trl_bridge.TimeLimit, TrainerCallback)


def test_a_killed_reward_run_resumes_to_the_same_result(pairs_file, straight_reward, tmp_path,  # noqa: F811
                                                        monkeypatch):  # fmt: skip
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        kill_after_save(patch, epoch=1)
        with pytest.raises(Killed):
            run(reward_config(pairs_file, run_dir))
    run(reward_config(pairs_file, run_dir), resume=True)
    expected, got = after(straight_reward), after(run_dir)
    assert got["accuracy"] == expected["accuracy"]
    assert got["margin"] == pytest.approx(expected["margin"], rel=1e-3)
    epochs = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs if e["event"] == "eval"] == [1, 2]


def test_a_damaged_newest_trl_checkpoint_falls_back_with_one_line(pairs_file, straight_reward,  # noqa: F811
                                                                  tmp_path, monkeypatch, capsys):  # fmt: skip
    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        kill_after_save(patch, epoch=1)
        with pytest.raises(Killed):
            run(reward_config(pairs_file, run_dir))
    newest = max((run_dir / "trl").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    weights = next(newest.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    capsys.readouterr()
    run(reward_config(pairs_file, run_dir), resume=True)
    notes = [x for x in capsys.readouterr().err.splitlines() if x.startswith("note:")]
    assert len(notes) == 1 and newest.name in notes[0] and "damaged" in notes[0], notes
    assert after(run_dir)["accuracy"] == after(straight_reward)["accuracy"]


def test_resuming_a_finished_reward_run_changes_nothing(pairs_file, straight_reward):  # noqa: F811
    adapter = straight_reward / "adapter" / "adapter_model.safetensors"
    stamp = adapter.stat().st_mtime_ns
    summary = run(reward_config(pairs_file, straight_reward), resume=True)
    assert adapter.stat().st_mtime_ns == stamp and summary["score"] == pytest.approx(
        json.loads((straight_reward / "train_summary.json").read_text())["score"]
    )


def test_a_killed_ppo_run_resumes_to_the_same_result(pairs_file, straight_reward, tmp_path,  # noqa: F811
                                                     monkeypatch):  # fmt: skip
    reward_dir = straight_reward

    def config(run_dir):
        return load_config(None, overrides("ppo", pairs_file, run_dir, "lora",
                                           f"task.reward_run={reward_dir}", "train.lr=0.003"))  # fmt: skip

    straight = run(config(tmp_path / "straight"))
    original = ppo_trainer.save_ppo

    def save_then_kill(folder, learner, state):
        original(folder, learner, state)
        if state.epoch == 1:
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(ppo_trainer, "save_ppo", save_then_kill)
        with pytest.raises(Killed):
            run(config(tmp_path / "killed"))
    resumed = run(config(tmp_path / "killed"), resume=True)
    assert resumed["score"] == pytest.approx(straight["score"], abs=1e-4)
    assert resumed["score_before"] == pytest.approx(straight["score_before"], abs=1e-6)
