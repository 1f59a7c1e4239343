"""Every method trains on every architecture: loss falls; only the intended parameters change."""

import json

import pytest
import torch
from safetensors.torch import load_file
from tests.helpers import train_tiny
from transformers import AutoModelForSequenceClassification

from tunelab.artifacts import load_run
from tunelab.inference import classify_texts
from tunelab.models.anatomy import describe

ARCHS = ["gpt2", "llama", "distilbert", "bert", "stories260K"]


def base_weights(model_dir: str, labels: list[str]) -> dict[str, torch.Tensor]:
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=len(labels))
    return {k: v.clone() for k, v in model.state_dict().items()}


def changed_names(before: dict, after: dict) -> set[str]:
    return {k for k, v in after.items() if k in before and not torch.equal(before[k], v)}


def block_prefix(model) -> str:
    """State-dict prefix of block i is `<prefix><i>.`"""
    backbone_name = model.base_model_prefix
    for name, module in model.named_modules():
        if module is describe(model).blocks:
            return name + "."
    raise AssertionError(backbone_name)


def history(run_dir) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["event"] == "eval"]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("method", ["head", "freeze", "full"])
def test_weight_methods_train_only_intended_parameters(model_dirs, toy_csv, tmp_path, arch, method):
    extra = ["train.lr=0.02"] if method == "head" else []
    train_tiny(model_dirs[arch], toy_csv, tmp_path / "run", method, extra)
    epochs = history(tmp_path / "run")
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]

    trained, _, info = load_run(tmp_path / "run")
    after = trained.state_dict()
    before = base_weights(model_dirs[arch], info["labels"])
    changed = changed_names(before, after)
    head = set(describe(trained).head_names)
    blocks = block_prefix(trained)
    n_blocks = len(describe(trained).blocks)
    in_head = {k for k in after if k.split(".")[0] in head}
    in_last_block = {k for k in after if k.startswith(f"{blocks}{n_blocks - 1}.")}
    in_first_block = {k for k in after if k.startswith(f"{blocks}0.")}

    assert in_head & changed, "the head must learn"
    if method == "head":
        assert changed <= in_head
    elif method == "freeze":
        assert in_last_block & changed
        assert not (in_first_block & changed), "lower blocks must stay frozen"
    else:
        assert in_first_block & changed


@pytest.mark.parametrize("arch", ARCHS)
def test_lora_trains_adapters_and_head_only(model_dirs, toy_csv, tmp_path, arch):
    train_tiny(
        model_dirs[arch], toy_csv, tmp_path / "run", "lora", ["method.r=4", "method.alpha=32"]
    )
    epochs = history(tmp_path / "run")
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]

    saved = load_file(tmp_path / "run" / "adapter" / "adapter_model.safetensors")
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in saved.items()), (
        "LoRA B starts at 0 and must move"
    )
    assert any("modules_to_save" in k or "score" in k or "classifier" in k for k in saved), (
        "head saved"
    )
    assert not any(
        "lora" not in k and ("layers" in k or ".h." in k or "layer." in k) for k in saved
    ), "no base block weight is saved in the adapter"
    model, _, info = load_run(tmp_path / "run")
    base = base_weights(model_dirs[arch], info["labels"])
    merged_free = {
        k.replace("base_model.model.", "").replace(".base_layer", ""): v
        for k, v in model.state_dict().items()
        if "lora_" not in k
    }
    frozen = {
        k
        for k in base
        if k in merged_free and k.split(".")[0] not in describe(model.base_model.model).head_names
    }
    assert frozen and all(torch.equal(base[k], merged_free[k]) for k in frozen)


@pytest.mark.parametrize("arch", ["bert", "stories260K"])
@pytest.mark.parametrize("method", ["lora", "freeze"])
def test_mean_pooling_trains_and_reloads_identically(model_dirs, toy_csv, tmp_path, arch, method):
    extra = ["task.pooling=mean", "train.lr=0.01"]
    summary = train_tiny(model_dirs[arch], toy_csv, tmp_path / "run", method, extra)
    assert history(tmp_path / "run")[-1]["train_loss"] < history(tmp_path / "run")[0]["train_loss"]
    assert summary["test_accuracy_after"] > summary["test_accuracy_before"]
    examples = json.loads((tmp_path / "run" / "eval_after.json").read_text())["examples"]
    again = classify_texts(str(tmp_path / "run"), [e["text"] for e in examples])
    for saved, reloaded in zip(examples, again, strict=True):
        for a, b in zip(saved["probs"].values(), reloaded["probs"].values(), strict=True):
            assert abs(a - b) < 1e-6
