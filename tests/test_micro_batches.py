"""Micro-batches (train.micro_batch_tokens): a long batch runs in slices whose gradients add up
to the whole batch's, so training is the same with less memory held."""

import json

import pytest
import torch
from tests.helpers import train_tiny
from tests.lm_helpers import sft_overrides

from tunelab.data.micro_batches import micro_batches
from tunelab.pipeline import load_config, run


def epochs(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [(r["train_loss"], r["val_loss"]) for r in map(json.loads, lines) if r["event"] == "eval"]  # fmt: skip


def test_a_batch_over_the_budget_runs_as_slices_cut_to_their_own_padding():
    mask = torch.tensor([[1] * 10, [1] * 9 + [0], [1] * 3 + [0] * 7, [1] * 2 + [0] * 8])
    batch = {"input_ids": mask * 7, "attention_mask": mask, "labels": torch.tensor([0, 1, 1, 0])}
    assert micro_batches(batch, 40) == [batch]  # 4 x 10 fits: untouched
    first, second = micro_batches(batch, 20)
    assert first["input_ids"].shape == (2, 10) and second["input_ids"].shape == (2, 3)
    assert second["labels"].tolist() == [1, 0]
    assert micro_batches(batch, 1)[3]["attention_mask"].tolist() == [[1, 1]]  # one row at least


# stories260K has no dropout: the same batches give the same losses, sliced or not (to float
# rounding: 1e-4 after 3 epochs; weighing slices equally instead of by rows is off by 0.2).
@pytest.mark.parametrize("method,extra", [("full", []), ("freeze", ["method.k=1"])])
def test_classification_trains_the_same_in_micro_batches(model_dirs, toy_csv, tmp_path, method, extra):  # fmt: skip
    runs = {}
    for budget in ("null", "30"):  # batches of 8 rows x 10-12 tokens: slices of 2 or 3 rows
        run_dir = tmp_path / budget
        summary = train_tiny(model_dirs["stories260K"], toy_csv, run_dir, method,
                             [*extra, f"train.micro_batch_tokens={budget}"])  # fmt: skip
        runs[budget] = (epochs(run_dir), summary["score"])
    (whole, acc_whole), (sliced, acc_sliced) = runs["null"], runs["30"]
    assert acc_sliced == acc_whole
    # float sums in another order, through Adam: the first two epochs agree to 1e-3; by the third
    # the full fine-tune's train loss is near 0 and Adam amplifies the rounding (0.068 vs 0.062)
    for a, b in zip(sliced[:2], whole[:2], strict=True):
        assert a == pytest.approx(b, abs=1e-3)


def test_sft_trains_the_same_in_micro_batches(tmp_path):
    # the loss is a mean over labelled tokens: slices weigh by their labelled tokens, not rows
    runs = {}
    for budget in ("null", "40"):
        (tmp_path / budget).mkdir()
        overrides = sft_overrides(tmp_path / budget, "full", "train.epochs=2", "train.lr=0.01",
                                  "eval.generate_limit=1", f"train.micro_batch_tokens={budget}")  # fmt: skip
        run(load_config(None, overrides))
        runs[budget] = epochs(tmp_path / budget / "run")
    for a, b in zip(runs["40"], runs["null"], strict=True):
        assert a == pytest.approx(b, abs=1e-3)  # float sums in another order, through Adam


def test_evaluation_and_the_frozen_cache_give_the_same_figures_in_slices(
    model_dirs, toy_csv, tmp_path, monkeypatch
):
    import tunelab.tasks.classify.metrics
    import tunelab.train.frozen_cache

    def run_freeze(name):
        summary = train_tiny(model_dirs["stories260K"], toy_csv, tmp_path / name, "freeze", ["method.k=1"])  # fmt: skip
        return epochs(tmp_path / name), summary["score"]

    whole = run_freeze("whole")
    for module in (
        tunelab.tasks.classify.metrics,
        tunelab.train.frozen_cache,
    ):  # forward passes of 1-2 rows
        monkeypatch.setattr(module, "FORWARD_TOKENS", 24)
    (sliced, accuracy) = run_freeze("sliced")
    assert accuracy == whole[1]
    for a, b in zip(sliced, whole[0], strict=True):
        assert a == pytest.approx(b, abs=1e-5)
