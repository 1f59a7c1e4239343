"""Export (merged and unmerged) gives the run's predictions; quantized variants are measured."""

import json

import numpy as np
import pytest
import torch
from peft import PeftModel
from tests.helpers import train_tiny
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from typer.testing import CliRunner

from tunelab.cli import app
from tunelab.inference import classify_texts

TEXTS = ["a great wonderful film", "an awful boring film", "the plot had some actors"]


def plain_hf_probs(model, folder) -> np.ndarray:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    batch = tokenizer(TEXTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model.eval()(**batch).logits.softmax(-1).numpy()


def run_probs(run_dir) -> np.ndarray:
    return np.array([list(r["probs"].values()) for r in classify_texts(str(run_dir), TEXTS)])


@pytest.mark.parametrize("method", ["lora", "ia3"])
def test_merged_export_loads_with_plain_transformers_and_predicts_the_same(
    model_dirs, toy_csv, tmp_path, method
):
    run_dir = tmp_path / "run"
    train_tiny(model_dirs["llama"], toy_csv, run_dir, method, ["train.lr=0.01"])
    runner = CliRunner()
    result = runner.invoke(
        app, ["export", str(run_dir), "--out", str(tmp_path / "merged"), "--merge"]
    )
    assert result.exit_code == 0, result.output
    merged = AutoModelForSequenceClassification.from_pretrained(tmp_path / "merged")
    np.testing.assert_allclose(
        plain_hf_probs(merged, tmp_path / "merged"), run_probs(run_dir), atol=1e-5
    )

    result = runner.invoke(app, ["export", str(run_dir), "--out", str(tmp_path / "adapter")])
    assert result.exit_code == 0, result.output
    info = json.loads((run_dir / "run_info.json").read_text())
    base = AutoModelForSequenceClassification.from_pretrained(
        info["base_model"], num_labels=2, pad_token_id=merged.config.pad_token_id
    )
    unmerged = PeftModel.from_pretrained(base, tmp_path / "adapter")
    np.testing.assert_allclose(
        plain_hf_probs(unmerged, tmp_path / "adapter"), run_probs(run_dir), atol=1e-5
    )


def test_merge_of_a_method_without_adapter_weights_is_a_one_line_error(
    model_dirs, toy_csv, tmp_path
):
    train_tiny(model_dirs["llama"], toy_csv, tmp_path / "run", "freeze", ["train.epochs=1"])
    result = CliRunner().invoke(
        app, ["export", str(tmp_path / "run"), "--out", str(tmp_path / "x"), "--merge"]
    )
    assert (
        result.exit_code == 2 and result.output.startswith("error:") and "freeze" in result.output
    )
