"""The run directory contract, reload to identical predictions, resume, predict and eval."""

import json

import numpy as np
import pytest
from safetensors.torch import load_file
from tests.helpers import assert_one_line_error, run_cli, train_tiny
from typer.testing import CliRunner

import tunelab.train.loop as loop
from tunelab.cli import app
from tunelab.inference import classify_texts

CONTRACT = [
    "config.yaml",
    "data_summary.json",
    "metrics.jsonl",
    "eval_before.json",
    "eval_after.json",
    "run_info.json",
    "train_summary.json",
    "report.md",
    "report.html",
    "plots/curves.png",
    "plots/confusion.png",
]


@pytest.fixture(scope="module")
def lora_run(model_dirs, toy_csv, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "lora"
    # The real stories260K weights: LoRA on a pretrained model, as users run it (on every linear
    # layer: on the query projections alone one seed in three stayed under 0.9 in 5 epochs).
    extra = ["train.lr=0.01", "train.epochs=5", "method.target_modules=all-linear"]
    train_tiny(model_dirs["stories260K"], toy_csv, run_dir, "lora", extra)
    return run_dir


def test_run_directory_contract(lora_run):
    for name in CONTRACT:
        assert (lora_run / name).is_file(), name
    assert (lora_run / "adapter" / "adapter_config.json").is_file()
    summary = json.loads((lora_run / "data_summary.json").read_text())
    assert set(summary["splits"]) == {"train", "val", "test"}
    assert sum(s["rows"] for s in summary["splits"].values()) == 160
    events = [
        json.loads(line)["event"] for line in (lora_run / "metrics.jsonl").read_text().splitlines()
    ]
    assert events.count("eval") == 5 and "train" in events
    html = (lora_run / "report.html").read_text()
    assert "data:image/png;base64," in html and "plots/" not in html, (
        "the HTML report is self-contained"
    )
    assert "| accuracy |" in (lora_run / "report.md").read_text()


@pytest.mark.parametrize("method", ["lora", "freeze"])
def test_saved_run_reloads_to_identical_predictions(
    model_dirs, toy_csv, tmp_path, lora_run, method
):
    run_dir = lora_run if method == "lora" else tmp_path / "run"
    if method != "lora":
        train_tiny(model_dirs["llama"], toy_csv, run_dir, method)
    examples = json.loads((run_dir / "eval_after.json").read_text())["examples"]
    reloaded = classify_texts(str(run_dir), [e["text"] for e in examples])
    for in_memory, again in zip(examples, reloaded, strict=True):
        np.testing.assert_allclose(
            list(in_memory["probs"].values()), list(again["probs"].values()), atol=1e-6
        )


def test_predict_and_eval_commands(lora_run, toy_csv):
    runner = CliRunner()
    result = runner.invoke(
        app, ["predict", str(lora_run), "a great wonderful film", "an awful boring film"]
    )
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert result.exit_code == 0 and len(lines) == 2
    assert all(abs(sum(line["probs"].values()) - 1) < 1e-5 for line in lines)
    result = runner.invoke(app, ["predict", str(lora_run)], input="superb movie\n")
    assert json.loads(result.output)["label"] in {"pos", "neg"}
    result = runner.invoke(app, ["eval", str(lora_run), "--data", str(toy_csv)])
    metrics = json.loads(result.output)
    assert (
        result.exit_code == 0 and metrics["n"] == 160 and {"accuracy", "macro_f1"} <= metrics.keys()
    )
    assert (lora_run / "eval_toy.json").is_file()


def test_trained_model_beats_its_start(lora_run):
    before = json.loads((lora_run / "eval_before.json").read_text())
    after = json.loads((lora_run / "eval_after.json").read_text())
    assert after["accuracy"] >= 0.9 > before["accuracy"]


class Interrupted(Exception):
    pass


def test_resumed_run_matches_uninterrupted(model_dirs, toy_csv, tmp_path, monkeypatch):
    extra = ["train.epochs=3"]
    train_tiny(model_dirs["llama"], toy_csv, tmp_path / "straight", "freeze", extra)

    original = loop.Trainer.checkpoint

    def crash_after_first_epoch(self, state, scheduler, improved):
        original(self, state, scheduler, improved)
        if state.epoch == 1:
            raise Interrupted

    monkeypatch.setattr(loop.Trainer, "checkpoint", crash_after_first_epoch)
    with pytest.raises(Interrupted):
        train_tiny(model_dirs["llama"], toy_csv, tmp_path / "resumed", "freeze", extra)
    monkeypatch.setattr(loop.Trainer, "checkpoint", original)
    assert not (tmp_path / "resumed" / "eval_after.json").exists()
    train_tiny(model_dirs["llama"], toy_csv, tmp_path / "resumed", "freeze", extra, resume=True)

    straight = load_file(tmp_path / "straight" / "model" / "model.safetensors")
    resumed = load_file(tmp_path / "resumed" / "model" / "model.safetensors")
    for name, tensor in straight.items():
        np.testing.assert_allclose(tensor.numpy(), resumed[name].numpy(), atol=1e-6, err_msg=name)
    history = [
        json.loads(x) for x in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [h["epoch"] for h in history if h["event"] == "eval"] == [1, 2, 3]


def test_refuses_to_overwrite_a_run(model_dirs, toy_csv, lora_run):
    code, output = run_cli(
        "train",
        f"model.name={model_dirs['llama']}",
        f"data.path={toy_csv}",
        f"output.dir={lora_run}",
    )
    assert_one_line_error(code, output, "not empty", "--resume")


def test_early_stopping_stops_and_restores_the_best_epoch(model_dirs, toy_csv, tmp_path):
    # A learning rate this small changes nothing: validation never improves after epoch 1.
    extra = [
        "train.epochs=5",
        "train.lr=1e-12",
        "train.scheduler=constant",
        "train.early_stopping_patience=2",
    ]
    summary = train_tiny(model_dirs["llama"], toy_csv, tmp_path / "run", "head", extra)
    assert summary["epochs_run"] == 3 and summary["best_epoch"] == 1


def test_a_run_finds_its_base_from_any_folder_and_refuses_another_model_there(
    model_dirs, toy_csv, tmp_path, monkeypatch
):
    """Issue 36: a run recorded its base by the relative path it was given; from another working
    folder `predict` failed with the Hub's connection message, and from a folder holding another
    model at that path it answered with that model, exit 0."""
    import shutil

    shutil.copytree(model_dirs["stories260K"], tmp_path / "base")
    monkeypatch.chdir(tmp_path)
    train_tiny("./base", toy_csv, tmp_path / "run", "lora")
    (tmp_path / "elsewhere" / "base").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "elsewhere")  # its ./base is an empty folder
    code, output = run_cli("predict", tmp_path / "run", "a good film")
    assert code == 0, output
    shutil.rmtree(tmp_path / "base")
    shutil.copytree(model_dirs["llama"], tmp_path / "base")  # another Llama at the same path
    code, output = run_cli("predict", tmp_path / "run", "a good film")
    assert_one_line_error(code, output, "no longer holds the base model the run was trained from")
