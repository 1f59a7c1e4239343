"""compare: variants on the same data produce the leaderboard; prompting returns probabilities."""

import json

import numpy as np
from tests.helpers import (
    assert_one_line_error,
    run_cli,
    train_tiny,
    write_base,
    write_experiment,
)
from typer.testing import CliRunner

from tunelab.cli import app
from tunelab.hardware import this_cpu
from tunelab.inference import classify_texts


def three_variants(tmp_path, model_dir, data) -> tuple:
    write_base(tmp_path, model_dir, data)
    variants = [
        {
            "name": "zero_shot",
            "overrides": ["method.name=zero_shot", "method.description=Is it positive?"],
        },
        {"name": "head", "overrides": ["method.name=head", "train.lr=0.02"]},
        {"name": "lora", "overrides": ["method.name=lora", "train.lr=0.01"]},
    ]
    return write_experiment(tmp_path, variants), tmp_path / "cmp"


def test_compare_writes_the_leaderboard_and_skips_finished_variants(model_dirs, toy_csv, tmp_path):
    experiment, out = three_variants(tmp_path, model_dirs["stories260K"], toy_csv)
    result = CliRunner().invoke(app, ["compare", str(experiment), "--epochs", "2"])
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "leaderboard.json").read_text())
    # the untrained start is a row of its own: what tuning gained is on the board
    assert {r["method"] for r in rows} == {"zero_shot", "head", "lora", "before"}
    assert all(r["status"] == "ok" for r in rows)
    assert rows == sorted(rows, key=lambda r: -r["score"])
    assert all(r["score_name"] == "test_accuracy" for r in rows)
    zero = next(r for r in rows if r["method"] == "zero_shot")
    lora = next(r for r in rows if r["method"] == "lora")
    assert zero["trainable_params"] == 0 and 0 < lora["trainable_pct"] < 100
    assert lora["score"] > zero["score"]
    # one seed: no interval, but every row is judged against the leader on the same examples
    assert rows[0]["verdict"] == "best" and rows[0]["score_ci"] is None
    assert all(r["verdict"].startswith(("tied (p=", "worse (p=")) for r in rows[1:])
    for name in (
        "leaderboard.md",
        "plots/accuracy.png",
        "plots/accuracy_vs_params.png",
        "plots/pareto_time.png",
        "plots/pareto_memory.png",
    ):
        assert (out / name).is_file(), name
    board = (out / "leaderboard.md").read_text()
    assert "| lora |" in board
    cpu = this_cpu()  # times are the CPU's: every row and the page name it
    measured = [r for r in rows if r["method"] != "before"]  # the start row takes no time
    assert all(r["machine"]["cpu"]["model"] == cpu.model for r in measured)
    assert f"Measured on: {cpu.model}, " in board and lora["precision"] == "fp32"

    again = CliRunner().invoke(app, ["compare", str(experiment), "--epochs", "2"])
    assert again.output.count("skipped") == 3
    other = CliRunner().invoke(app, ["compare", str(experiment)])  # another budget: refused
    assert other.exit_code == 2 and "budget_overrides changed" in other.output


def test_zero_and_few_shot_return_probabilities(model_dirs, toy_csv, tmp_path):
    for method in ("zero_shot", "few_shot"):
        run_dir = tmp_path / method
        summary = train_tiny(
            model_dirs["stories260K"],
            toy_csv,
            run_dir,
            method,
            ["method.shots=2"] if method == "few_shot" else [],
        )
        assert summary["parameters"]["trainable"] == 0 and summary["epochs_run"] == 0
        results = classify_texts(str(run_dir), ["a great film", "an awful film", "the plot"])
        probs = np.array([list(r["probs"].values()) for r in results])
        assert probs.shape == (3, 2) and np.allclose(probs.sum(axis=1), 1) and (probs >= 0).all()
    prompt = json.loads((tmp_path / "few_shot" / "prompt" / "prompt.json").read_text())
    assert len(prompt["shots"]) == 2 and {label for _, label in prompt["shots"]} == {"pos", "neg"}


def test_prompting_an_encoder_is_a_one_line_error(model_dirs, toy_csv, tmp_path):
    code, output = run_cli(
        "train",
        f"model.name={model_dirs['bert']}",
        f"data.path={toy_csv}",
        "method.name=zero_shot",
        f"output.dir={tmp_path / 'run'}",
    )
    assert_one_line_error(code, output, "zero_shot", "encoder")
