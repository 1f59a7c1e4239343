"""The base's before-figures kept once for every run of a compare that evaluates it alike (its
trials and seeds), without changing how any of those runs trains. compare names the folder in
$TUNELAB_KEPT_EVAL for its runs, as these tests do."""

import json

from tests.helpers import assert_same_run, train_tiny

from tunelab.pipeline.kept_eval import KEPT_EVAL_VARIABLE

EXTRA = ["train.epochs=3"]


def kept_figures(folder) -> list:
    return sorted(folder.glob("*.json"))


def test_a_second_run_reads_the_kept_figures_and_trains_as_the_first(
    model_dirs, toy_csv, tmp_path, monkeypatch
):
    """LoRA's new weights are drawn after the before-evaluation: a run that read the figures
    instead of evaluating must still draw the same weights and reach the same model."""
    monkeypatch.setenv(KEPT_EVAL_VARIABLE, str(tmp_path / "kept"))
    first, second = tmp_path / "first", tmp_path / "second"
    train_tiny(model_dirs["llama"], toy_csv, first, "lora", EXTRA)
    [kept] = kept_figures(tmp_path / "kept")
    figures = json.loads(kept.read_text())
    assert figures == json.loads((first / "eval_before.json").read_text())
    kept.write_text(json.dumps({**figures, "read_back": True}))  # shows the second run read it
    train_tiny(model_dirs["llama"], toy_csv, second, "lora", EXTRA)
    assert json.loads((second / "eval_before.json").read_text())["read_back"] is True
    assert_same_run(first, second)


def test_settings_only_training_reads_share_the_figures_and_the_evaluated_rows_do_not(
    model_dirs, toy_csv, tmp_path, monkeypatch
):
    monkeypatch.setenv(KEPT_EVAL_VARIABLE, str(tmp_path / "kept"))
    llama = model_dirs["llama"]
    train_tiny(llama, toy_csv, tmp_path / "a", "lora", ["train.epochs=1"])
    train_tiny(llama, toy_csv, tmp_path / "b", "lora", ["train.epochs=1", "train.lr=0.001"])
    assert len(kept_figures(tmp_path / "kept")) == 1  # another rate: the same base, same rows
    train_tiny(llama, toy_csv, tmp_path / "c", "lora", ["train.epochs=1", "data.max_length=16"])
    assert len(kept_figures(tmp_path / "kept")) == 2  # rows cut shorter: evaluated anew
    before = [json.loads((tmp_path / r / "eval_before.json").read_text()) for r in "abc"]
    assert before[0] == before[1] and before[2]["loss"] != before[0]["loss"]
