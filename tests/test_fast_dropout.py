"""LoRA's input dropout, made cheaper: same probability, same expectation, swapped in by lora."""

import pytest
import torch

from tunelab.methods.fast_dropout import FastDropout, speed_up_lora_dropout


@pytest.mark.parametrize("p", [0.05, 0.3])
def test_drops_at_the_rate_and_keeps_the_expectation(p):
    torch.manual_seed(0)
    dropout = FastDropout(p).train()
    out = dropout(torch.ones(1000, 1000))
    assert (out == 0).float().mean().item() == pytest.approx(p, abs=0.002)
    assert out.mean().item() == pytest.approx(1.0, abs=0.005)
    x = torch.randn(4, 8, requires_grad=True)
    y = dropout(x)
    y.sum().backward()  # the gradient flows through the kept elements only, scaled alike
    torch.testing.assert_close(x.grad, torch.where(y != 0, 1 / (1 - p), 0.0))


def test_is_the_identity_in_eval_mode():
    x = torch.randn(3, 5)
    assert torch.equal(FastDropout(0.5).eval()(x), x)


def test_lora_models_get_it_and_save_the_same_keys(model_dirs):
    from peft import LoraConfig, get_peft_model
    from peft.utils import get_peft_model_state_dict
    from transformers import AutoModelForCausalLM

    def lora_model():
        base = AutoModelForCausalLM.from_pretrained(model_dirs["stories260K"])
        return get_peft_model(base, LoraConfig(r=4, lora_dropout=0.1, target_modules="all-linear"))

    plain, fast = lora_model(), lora_model()
    swapped = speed_up_lora_dropout(fast)
    assert swapped == sum(1 for m in fast.modules() if hasattr(m, "lora_A"))
    assert not any(isinstance(m, torch.nn.Dropout) for m in fast.modules())
    assert get_peft_model_state_dict(fast).keys() == get_peft_model_state_dict(plain).keys()
