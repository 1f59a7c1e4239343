"""train.precision: autocast through Accelerate. auto is bf16 on a GPU that has it; on a CPU only
where bf16 is native and a bf16 step measured faster here (tests/test_hardware.py covers the rule
on three CPUs); asked for, bf16 trains on any CPU, with frozen weights held in bf16 meanwhile."""

import json

import torch
from tests.helpers import train_tiny
from tests.lm_helpers import sft_overrides
from torch import nn
from transformers import AutoModelForCausalLM

from tunelab.config import TrainConfig
from tunelab.hardware import this_cpu
from tunelab.pipeline import load_config, run
from tunelab.precision_probe import bf16_step_speedup
from tunelab.runtime import auto_precision, resolve_precision
from tunelab.train.bf16_weights import frozen_linears_in_bf16


def test_auto_precision_follows_this_cpu_and_says_why(monkeypatch):
    assert resolve_precision(TrainConfig()).reason == "auto: fp32 (TUNELAB_AUTO_PRECISION)"
    monkeypatch.delenv("TUNELAB_AUTO_PRECISION")  # conftest's pin for the suite
    cpu = this_cpu()
    choice = resolve_precision(TrainConfig())
    speedup = bf16_step_speedup(bf16_weights=True) if cpu.native_bf16 else None
    assert choice == auto_precision(cpu, False, speedup)
    assert ("no native bf16" in choice.reason) != cpu.native_bf16
    assert resolve_precision(TrainConfig(precision="bf16")).accelerate == "bf16"
    assert resolve_precision(TrainConfig(precision="fp32")).record()["used"] == "fp32"


def test_frozen_weights_are_bf16_only_inside_the_block(model_dirs):
    model = AutoModelForCausalLM.from_pretrained(model_dirs["stories260K"])
    model.requires_grad_(False)
    model.lm_head.requires_grad_(True)
    linears = [m for m in model.modules() if type(m) is nn.Linear]
    before = {id(m): m.weight for m in linears}
    with frozen_linears_in_bf16(model, enabled=True) as copied:
        assert copied == len(linears) - 1  # all but the trainable head
        assert model.model.layers[0].mlp.down_proj.weight.dtype == torch.bfloat16
        assert model.lm_head.weight.dtype == torch.float32
    assert all(m.weight is before[id(m)] for m in linears)  # the very fp32 tensors again


def test_a_bf16_run_trains_and_saves_fp32_weights(model_dirs, toy_csv, tmp_path):
    summary = train_tiny(model_dirs["llama"], toy_csv, tmp_path / "run", "full",
                         ["train.precision=bf16", "train.epochs=2"])  # fmt: skip
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [x["train_loss"] for x in lines if x["event"] == "eval"]
    assert losses[-1] < losses[0] and summary["score"] > 0.5
    config = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert config["dtype"] == "float32"  # autocast computes in bf16; the weights stay fp32
    assert summary["precision"] == {"used": "bf16", "reason": "train.precision=bf16"}


def test_a_bf16_lora_run_lowers_perplexity_like_fp32(tmp_path):
    """The frozen base in bf16 during the epochs: the adapter still learns, and the held-out
    perplexity lands near the fp32 run's."""
    perplexity = {}
    for precision in ("fp32", "bf16"):
        folder = tmp_path / precision
        folder.mkdir()
        summary = run(load_config(None, sft_overrides(folder, "lora", "train.epochs=3",
                                                      "train.lr=0.01", f"train.precision={precision}")))  # fmt: skip
        assert summary["precision"]["used"] == precision
        perplexity[precision] = (summary["perplexity_before"], summary["perplexity"])
    (before, fp32), (_, bf16) = perplexity["fp32"], perplexity["bf16"]
    assert bf16 < 0.8 * before and fp32 < 0.8 * before
    assert abs(bf16 - fp32) < 0.1 * fp32
