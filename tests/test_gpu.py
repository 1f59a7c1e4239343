"""The CUDA paths, run by benchmarks/gpu_check.sh on a machine with a GPU (skipped elsewhere):
bf16 autocast chosen by `auto`, QLoRA on bitsandbytes' CUDA kernels, tunelab's fused LoRA
layer against PEFT's forward and backward on the GPU, and train.distributed's FSDP and DeepSpeed
on one GPU."""

import pytest
import torch
from tests.lm_helpers import STORIES, sft_overrides
from tests.numerics import assert_close_to_scale

from tunelab.config import TrainConfig
from tunelab.pipeline import load_config, run
from tunelab.runtime import mixed_precision

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (gpu_check.sh)"),
]


def test_auto_precision_is_bf16_on_a_gpu_that_has_it():
    expected = "bf16" if torch.cuda.is_bf16_supported() else "no"
    assert mixed_precision(TrainConfig()) == expected


@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_sft_trains_on_the_gpu(tmp_path, method):
    extra = ["method.compute_dtype=bfloat16"] if method == "qlora" else []
    config = load_config(None, sft_overrides(tmp_path, method, "train.lr=0.01", "train.epochs=3",
                                             *extra))  # fmt: skip
    summary = run(config)
    assert summary["score"] < summary["score_before"]  # held-out perplexity falls
    assert summary["peak_gpu_mb"] is not None and summary["peak_gpu_mb"] > 0


def test_the_fused_lora_layer_matches_peft_on_the_gpu():
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tunelab.methods.fused_lora import fuse_lora_layers

    torch.manual_seed(0)
    ids = torch.randint(3, 500, (2, 24), device="cuda")
    outputs = []
    for fused in (False, True):
        model = AutoModelForCausalLM.from_pretrained(STORIES).cuda()
        lora = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
        torch.manual_seed(1)
        model = get_peft_model(model, lora)
        if fused:
            fuse_lora_layers(model)
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
        outputs.append((loss.detach(), grads))
    (loss_a, grads_a), (loss_b, grads_b) = outputs
    assert_close_to_scale(loss_b, loss_a, rel=1e-4)
    for a, b in zip(grads_a, grads_b, strict=True):
        assert_close_to_scale(b, a, rel=1e-3)  # TF32-free fp32, but cuBLAS picks its own order


@pytest.mark.parametrize("engine", ["fsdp", "deepspeed"])
def test_sharded_engines_train_lora_sft_on_one_gpu(tmp_path, engine):
    """train.distributed on CUDA, one process through torchrun (as --nproc does for N): FSDP's
    fully_shard, and DeepSpeed ZeRO-2 through Accelerate's plugin."""
    import json
    import subprocess
    import sys

    overrides = sft_overrides(tmp_path, "lora", "train.lr=0.01", "train.epochs=3",
                              "eval.generate_limit=1", f"train.distributed={engine}")  # fmt: skip
    command = [sys.executable, "-m", "tunelab.cli.launch", "--standalone", "--nproc_per_node=1",
               "-m", "tunelab.cli", "train", *overrides]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    before, after = (json.loads((tmp_path / "run" / f"eval_{when}.json").read_text())
                     for when in ("before", "after"))  # fmt: skip
    assert after["perplexity"] < 0.8 * before["perplexity"]
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()
