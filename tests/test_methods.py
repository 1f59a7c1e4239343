"""Every method trains on every architecture: loss falls; only the intended parameters change."""

import json

import pytest
import torch
from safetensors.torch import load_file
from tests.helpers import train_tiny
from transformers import AutoModelForSequenceClassification

from tunelab.artifacts import load_run
from tunelab.errors import TunelabError
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
    before = base_weights(model_dirs[arch], info.labels)
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


ADAPTER_METHODS = ["lora", "qlora", "ia3", "prompt_tuning", "prefix_tuning", "adapter"]
# What an adapter-style artefact may hold: its own tensors and the head, never a base weight.
ADAPTER_KEYS = ("lora_", "ia3_", "prompt_embeddings", "modules_to_save", ".down.", ".up.")


def saved_tensors(run_dir) -> dict[str, torch.Tensor]:
    for name in ("adapter/adapter_model.safetensors", "trainable/trainable.safetensors"):
        if (run_dir / name).is_file():
            return load_file(run_dir / name)
    raise AssertionError("no adapter artefact")


def reload_matches(run_dir) -> bool:
    examples = json.loads((run_dir / "eval_after.json").read_text())["examples"]
    again = classify_texts(str(run_dir), [e["text"] for e in examples])
    return all(
        abs(a - b) < 1e-6
        for saved, reloaded in zip(examples, again, strict=True)
        for a, b in zip(saved["probs"].values(), reloaded["probs"].values(), strict=True)
    )


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("method", ADAPTER_METHODS)
def test_adapter_methods_train_only_their_own_tensors(model_dirs, toy_csv, tmp_path, arch, method):
    run_dir = tmp_path / "run"
    if method == "prefix_tuning" and arch == "distilbert":
        with pytest.raises(TunelabError, match="key/value prefixes"):
            train_tiny(model_dirs[arch], toy_csv, run_dir, method)
        return
    # Tiny random encoders carry almost no signal in CLS (even head-only training cannot learn
    # from it); mean pooling passes the words through, so the method's own effect shows.
    pooling = "mean" if arch in ("bert", "distilbert") else "auto"
    train_tiny(
        model_dirs[arch], toy_csv, run_dir, method, ["train.lr=0.01", f"task.pooling={pooling}"]
    )
    epochs = history(run_dir)
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]

    saved = saved_tensors(run_dir)
    heads = ("score", "classifier", "head.")  # HF heads, and our mean-pooling head
    assert saved and all(any(key in name for key in ADAPTER_KEYS + heads) for name in saved), (
        sorted(saved)
    )
    assert any(v.abs().sum() > 0 for k, v in saved.items() if "modules_to_save" not in k)
    assert reload_matches(run_dir)


@pytest.mark.parametrize("arch", ["llama", "bert"])
def test_lora_leaves_base_weights_untouched(model_dirs, toy_csv, tmp_path, arch):
    train_tiny(model_dirs[arch], toy_csv, tmp_path / "run", "lora", ["train.lr=0.01"])
    model, _, info = load_run(tmp_path / "run")
    base = base_weights(model_dirs[arch], info.labels)
    inner = model.base_model.model
    unwrapped = {
        k.replace("base_model.model.", "").replace(".base_layer", ""): v
        for k, v in model.state_dict().items()
        if "lora_" not in k and "modules_to_save" not in k and "original_module" not in k
    }
    frozen = {
        k for k in base if k in unwrapped and k.split(".")[0] not in describe(inner).head_names
    }
    assert frozen and all(torch.equal(base[k], unwrapped[k]) for k in frozen)


@pytest.mark.parametrize("arch", ["bert", "stories260K"])
@pytest.mark.parametrize("method", ["lora", "freeze"])
def test_mean_pooling_trains_and_reloads_identically(model_dirs, toy_csv, tmp_path, arch, method):
    extra = ["task.pooling=mean", "train.lr=0.01"]
    summary = train_tiny(model_dirs[arch], toy_csv, tmp_path / "run", method, extra)
    assert history(tmp_path / "run")[-1]["train_loss"] < history(tmp_path / "run")[0]["train_loss"]
    assert summary["score"] > summary["score_before"]
    examples = json.loads((tmp_path / "run" / "eval_after.json").read_text())["examples"]
    again = classify_texts(str(tmp_path / "run"), [e["text"] for e in examples])
    for saved, reloaded in zip(examples, again, strict=True):
        for a, b in zip(saved["probs"].values(), reloaded["probs"].values(), strict=True):
            assert abs(a - b) < 1e-6
