"""A task registered from inside this test module (no edit of the package) runs end to end:
config union, pipeline.run with the shared loop, run record, report, leaderboard ranking."""

from pathlib import Path
from typing import Literal

import torch
from tests.conftest import ASSETS

from tunelab.config.settings import TaskSettings
from tunelab.data.lm_encode import lm_collator
from tunelab.models.loader import load_causal_lm
from tunelab.pipeline import load_config, run
from tunelab.report.leaderboard import collect_row, write_leaderboard
from tunelab.run_record import read_record
from tunelab.tasks import Score, Task, register_task
from tunelab.tasks.base import Column
from tunelab.tasks.generative.loss import causal_lm_loss, labelled_targets

WORDS = "Tom had a red ball . Lily saw a big dog . The sun was warm and the sky was blue ."


class RepeatSettings(TaskSettings):
    name: Literal["toy_repeat"] = "toy_repeat"
    copies: int = 40


@register_task
class RepeatTask(Task):
    """Learn one sentence by heart: mean token loss on it, lower is better."""

    name = "toy_repeat"
    settings = RepeatSettings
    methods = frozenset({"lora", "full"})
    model_kind = "causal_lm"
    trainer = "loop"
    score = Score("sentence_loss", "loss", higher_is_better=False)
    columns = (Column("tokens", "tokens", "{}"),)
    compute_loss = staticmethod(causal_lm_loss)
    loss_units = staticmethod(labelled_targets)

    def prepare(self) -> dict:
        ids = self.tokenizer(WORDS)["input_ids"]
        self.rows = [{"input_ids": ids, "labels": ids}] * self.config.task.copies
        return {"rows": len(self.rows), "tokens": len(ids)}

    @property
    def collate(self):
        return lm_collator(self.tokenizer)

    def load_model(self) -> torch.nn.Module:
        return load_causal_lm(self.run.model_path, **self.run.method.options(self.config.method))

    def loop_rows(self):
        return self.rows, self.rows[:4]

    @torch.no_grad()
    def validate(self, model, rows) -> dict:
        batch = self.collate(rows)
        return {"loss": causal_lm_loss(model, batch)[0].item()}

    def evaluate(self, model) -> dict:
        return self.validate(model, self.rows[:4])

    def scores(self, before: dict, after: dict) -> dict:
        return {**super().scores(before, after), "tokens": len(self.rows[0]["input_ids"])}

    @classmethod
    def report(cls, run_dir: Path, data: dict, before: dict, after: dict) -> list[str]:
        return ["## Sentence loss", "", f"{before['loss']:.3f} -> {after['loss']:.3f}"]


def test_a_task_registered_outside_the_package_runs_end_to_end(tmp_path):
    runs = {}
    for method, lr in (("lora", "0.02"), ("full", "0.01")):
        overrides = [f"model.name={ASSETS / 'stories260K'}", "task.name=toy_repeat",
                     "task.copies=32", f"method.name={method}", "train.epochs=2",
                     f"train.lr={lr}", f"output.dir={tmp_path / method}"]  # fmt: skip
        runs[method] = run(load_config(None, overrides))
    for method, summary in runs.items():
        assert summary["task"] == "toy_repeat" and summary["score_name"] == "sentence_loss"
        assert summary["score"] < summary["score_before"] - 0.5, method
        assert read_record(tmp_path / method).task_settings == {"name": "toy_repeat", "copies": 32}
        assert "## Sentence loss" in (tmp_path / method / "report.md").read_text()
    rows = [collect_row(m, tmp_path / m) for m in runs]
    path, table = write_leaderboard(rows, tmp_path)
    ranked = [r["method"] for r in sorted(rows, key=lambda r: r["score"])]  # lower is better
    assert table.index(f"| {ranked[0]} ") < table.index(f"| {ranked[1]} ")
    assert "| tokens |" in table.splitlines()[0]  # the column the task adds


def test_a_task_without_its_trainers_hooks_is_refused_when_it_registers():
    """Issue 35: a task naming the loop trainer without `validate` and `loss_units` failed with
    an AttributeError in the middle of its first run."""
    import pytest

    from tunelab.errors import TunelabError
    from tunelab.tasks import TASKS

    class HalfSettings(TaskSettings):
        name: Literal["toy_half"] = "toy_half"

    class HalfTask(RepeatTask):
        name = "toy_half"
        settings = HalfSettings
        trainer = "trl"  # which calls trl_trainer and train_size: neither is here

    with pytest.raises(TunelabError) as refused:
        register_task(HalfTask)
    message = str(refused.value)
    assert "\n" not in message and "lacks train_size, trl_trainer" in message
    assert "tunelab.train.trl_bridge.TrlHooks" in message
    assert "toy_half" not in TASKS.names()
