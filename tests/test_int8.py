"""INT8 quantization: smoothing keeps the model's function, `quantize` measures INT8 and 4-bit on
the test split with its calibration saved, and `predict --int8` uses that calibration."""

import json

import pytest
import torch
from tests.helpers import assert_one_line_error, run_cli, trained_run_dir
from tests.numerics import assert_close_to_scale
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from tunelab.inference import classify_texts
from tunelab.quantize import SMOOTHING_FILE
from tunelab.quantize.smoothing import ALPHAS, apply_smoothing, smooth_groups

TEXTS = ["a great wonderful film", "an awful boring film", "the plot had some actors"]


def test_smoothing_moves_scale_into_weights_without_changing_outputs(model_dirs):
    """Real stories260K: dividing each input channel and multiplying the weight's column back
    gives the same logits, while the smoothed weights really changed."""
    model = AutoModelForCausalLM.from_pretrained(model_dirs["stories260K"]).eval()
    ids = torch.randint(
        0, model.config.vocab_size, (2, 16), generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        before = model(input_ids=ids).logits
    groups = smooth_groups(model)
    assert len(groups) == 3 * model.config.num_hidden_layers
    generator = torch.Generator().manual_seed(1)
    scales = {
        g.key: torch.rand(g.consumers[0].in_features, generator=generator) * 4 + 0.25
        for g in groups
    }
    down = model.model.layers[0].mlp.down_proj.weight.clone()
    apply_smoothing(model, scales)
    with torch.no_grad():
        after = model(input_ids=ids).logits
    assert not torch.allclose(down, model.model.layers[0].mlp.down_proj.weight)
    assert_close_to_scale(after, before)  # smoothing is exact but for rounding


def test_smoothing_skips_architectures_it_cannot_fold(model_dirs):
    bert = AutoModelForSequenceClassification.from_pretrained(model_dirs["bert"], num_labels=2)
    assert smooth_groups(bert) == []


@pytest.fixture(scope="module")
def full_run(model_dirs, toy_csv, tmp_path_factory):
    return trained_run_dir(tmp_path_factory, model_dirs["llama"], toy_csv, "full", "train.lr=0.005")


def test_predict_int8_before_calibration_says_to_quantize_first(full_run):
    assert not (full_run / SMOOTHING_FILE).exists()
    code, output = run_cli("predict", full_run, "--int8", "a great film")
    assert_one_line_error(code, output, "no INT8 calibration", f"tunelab quantize {full_run}")


def test_quantize_measures_int8_and_4bit_and_predict_uses_its_calibration(full_run):
    code, output = run_cli("quantize", full_run, "--4bit")
    assert code == 0, output
    result = json.loads((full_run / "quantize.json").read_text())
    rows = {r["variant"]: r for r in result["variants"]}
    assert set(rows) == {"fp32", "int8", "nf4"}
    assert rows["int8"]["size_ratio"] < 0.7 and rows["nf4"]["size_ratio"] < 0.9
    assert abs(rows["int8"]["score_delta"]) <= 0.1
    assert rows["int8"]["smoothing_alpha"] in ALPHAS
    assert (full_run / SMOOTHING_FILE).is_file()
    assert "## Quantization" in (full_run / "report.md").read_text()
    full = classify_texts(str(full_run), TEXTS)
    int8 = classify_texts(str(full_run), TEXTS, int8=True)
    assert [r["label"] for r in int8] == [r["label"] for r in full]
    for quantized, exact in zip(int8, full, strict=True):
        assert abs(sum(quantized["probs"].values()) - 1) < 1e-5
        assert max(abs(quantized["probs"][k] - exact["probs"][k]) for k in exact["probs"]) < 0.05
