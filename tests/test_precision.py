"""train.precision: autocast through Accelerate. auto is fp32 on a CPU (bf16 runs ~40x slower on
CPUs without it) and bf16 on a GPU that has it; asked for, bf16 trains on a CPU too."""

import json

from tests.helpers import train_tiny

from tunelab.config import TrainConfig
from tunelab.runtime import mixed_precision


def test_auto_precision_is_fp32_on_this_cpu():
    assert mixed_precision(TrainConfig()) == "no"
    assert mixed_precision(TrainConfig(precision="bf16")) == "bf16"


def test_a_bf16_run_trains_and_saves_fp32_weights(model_dirs, toy_csv, tmp_path):
    summary = train_tiny(model_dirs["llama"], toy_csv, tmp_path / "run", "full",
                         ["train.precision=bf16", "train.epochs=2"])  # fmt: skip
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [x["train_loss"] for x in lines if x["event"] == "eval"]
    assert losses[-1] < losses[0] and summary["score"] > 0.5
    config = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert config["dtype"] == "float32"  # autocast computes in bf16; the weights stay fp32
