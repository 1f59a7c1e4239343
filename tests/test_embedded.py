"""The embedded defaults load from their PyPI packages, without the Hub, and train."""

import json

import pytest
from tests.helpers import train_tiny

from tunelab.models.embedded import resolve_model


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,method,rows", [("smollm2-135m", "head", 160), ("minilm-l6", "lora", 256)]
)
def test_embedded_model_trains_on_spam(name, method, rows, tmp_path):
    assert resolve_model(name)  # converts the GGUF once into the cache
    run_dir = tmp_path / "run"
    train_tiny(
        name,
        "builtin:sms_spam",
        run_dir,
        method,
        [
            "data.balance=undersample",
            f"data.limit_train={rows}",
            "train.epochs=2",
            "train.lr=0.003",
            "data.split=[0.9,0.05,0.05]",
        ],
    )
    summary = json.loads((run_dir / "train_summary.json").read_text())
    assert summary["parameters"]["total"] > 20_000_000
    assert summary["score"] > 0.75 > summary["score_before"]
