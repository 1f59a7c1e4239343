"""The fused LoRA layer: PEFT's numbers (with FastDropout's masks) on the real stories260K Llama,
dense or 4-bit, with fewer bytes kept for the backward; PEFT's own path where it cannot fuse."""

import pytest
import torch
from peft import LoraConfig, get_peft_model
from tests.numerics import assert_close_to_scale
from transformers import AutoModelForCausalLM, BitsAndBytesConfig

from tunelab.methods.fast_dropout import speed_up_lora_dropout
from tunelab.methods.fused_lora import LoraLinear, fuse_lora_layers

FOUR_BIT = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=torch.float32)


@pytest.fixture
def fused_calls(monkeypatch) -> list:
    """One entry per call of the fused node while the test runs."""
    calls, original = [], LoraLinear.apply
    monkeypatch.setattr(LoraLinear, "apply", lambda *args: calls.append(1) or original(*args))
    return calls


def lora_model(path: str, dropout: float, fused: bool, four_bit: bool = False):
    options = {"quantization_config": FOUR_BIT} if four_bit else {}
    base = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, **options)
    torch.manual_seed(0)  # the same A on both sides, and a B that is not zero, so all grads show
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=dropout, target_modules="all-linear")
    model = get_peft_model(base, config)
    for name, param in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(param, std=0.05)
    speed_up_lora_dropout(model)
    if fused:
        assert fuse_lora_layers(model) == sum(1 for m in model.modules() if hasattr(m, "lora_A"))
    return model.train()


def loss_and_grads(model, seed: int = 1):
    tokens = torch.randint(3, 500, (3, 12), generator=torch.Generator().manual_seed(5))
    torch.manual_seed(seed)  # the same dropout masks on both sides
    loss = model(input_ids=tokens, labels=tokens).loss
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    return loss.detach(), grads


@pytest.mark.parametrize("four_bit", [False, True], ids=["dense", "4-bit"])
@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_same_loss_and_gradients_as_peft(model_dirs, dropout, four_bit):
    path = model_dirs["stories260K"]
    loss, grads = loss_and_grads(lora_model(path, dropout, fused=False, four_bit=four_bit))
    fused_loss, fused_grads = loss_and_grads(
        lora_model(path, dropout, fused=True, four_bit=four_bit)
    )
    assert_close_to_scale(fused_loss, loss, rel=1e-5)
    assert fused_grads.keys() == grads.keys() and len(grads) > 10
    for name, grad in grads.items():
        assert_close_to_scale(fused_grads[name], grad, msg=name)


def test_other_dropout_masks_change_the_gradients(model_dirs):
    """The comparison above can fail: a different mask draw gives different gradients."""
    model = lora_model(model_dirs["stories260K"], 0.2, fused=True)
    _, grads = loss_and_grads(model, seed=1)
    grads = {n: g.clone() for n, g in grads.items()}
    model.zero_grad()
    _, other = loss_and_grads(model, seed=2)
    assert any(not torch.allclose(other[n], g) for n, g in grads.items())


def saved_bytes(model) -> int:
    """What autograd keeps for the backward of one forward, each storage counted once."""
    storages = {}

    def keep(tensor):
        storages[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    tokens = torch.randint(3, 500, (4, 64), generator=torch.Generator().manual_seed(5))
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
        model(input_ids=tokens, labels=tokens)
    return sum(storages.values())


def test_keeps_fewer_bytes_for_the_backward(model_dirs):
    path = model_dirs["stories260K"]
    peft_bytes = saved_bytes(lora_model(path, 0.1, fused=False))
    fused_bytes = saved_bytes(lora_model(path, 0.1, fused=True))
    assert fused_bytes < 0.85 * peft_bytes  # 0.78 on this model; more LoRA share on larger ones


def test_disabled_adapters_and_eval_run_as_peft(model_dirs, fused_calls):
    """DPO and PPO take the reference model from the policy with its adapter off."""
    path = model_dirs["stories260K"]
    tokens = torch.randint(3, 500, (2, 9), generator=torch.Generator().manual_seed(5))
    plain, fused = lora_model(path, 0.2, fused=False).eval(), lora_model(path, 0.2, fused=True)
    with fused.disable_adapter():
        off = fused(input_ids=tokens).logits
    assert not fused_calls  # PEFT's own path
    fused.eval()
    on = fused(input_ids=tokens).logits
    assert fused_calls  # fused, without dropout
    with plain.disable_adapter():
        torch.testing.assert_close(off, plain(input_ids=tokens).logits)
    assert_close_to_scale(on, plain(input_ids=tokens).logits, rel=1e-5)
    assert not torch.allclose(on, off)  # the adapter does change the output


def test_autocast_runs_peft_path(model_dirs, fused_calls):
    """bf16 autocast (a GPU's training mode) changes dtypes inside the node: PEFT's path runs."""
    model = lora_model(model_dirs["stories260K"], 0.2, fused=True)
    tokens = torch.randint(3, 500, (2, 9), generator=torch.Generator().manual_seed(5))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(input_ids=tokens, labels=tokens).loss
    loss.backward()
    assert not fused_calls and torch.isfinite(loss)
