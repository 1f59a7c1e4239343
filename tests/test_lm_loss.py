"""The generative loss projects only the labelled positions onto the vocabulary: the same loss
and gradients as the model's own, with every method's wrapper, at a fraction of the logits."""

import pytest
import torch
from tests.numerics import assert_close_to_scale
from transformers import AutoModelForCausalLM

from tunelab.tasks.generative.loss import labelled_token_loss, output_layer


def batch_of(vocab: int, rows: int = 3, length: int = 12) -> dict:
    torch.manual_seed(1)
    ids = torch.randint(3, vocab, (rows, length))
    mask = torch.ones_like(ids)
    mask[0, -4:] = 0  # a padded row
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :5] = -100  # the prompt
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def wrapped(model, method: str):
    from peft import IA3Config, LoraConfig, PrefixTuningConfig, PromptTuningConfig, get_peft_model

    configs = {
        "lora": LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False),
        "ia3": IA3Config(target_modules=["q_proj", "down_proj"], feedforward_modules=["down_proj"]),
        "prompt_tuning": PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3),
        "prefix_tuning": PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3),
    }
    return model if method == "full" else get_peft_model(model, configs[method])


@pytest.mark.parametrize("method", ["full", "lora", "ia3", "prompt_tuning", "prefix_tuning"])
def test_loss_and_gradients_match_the_models_own(model_dirs, method):
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(model_dirs["stories260K"], dtype=torch.float32)
    model = wrapped(base, method)
    batch = batch_of(base.config.vocab_size)
    trained = [p for p in model.parameters() if p.requires_grad]

    own = model(**batch).loss
    own_grads = torch.autograd.grad(own, trained)
    ours = labelled_token_loss(model, batch)
    our_grads = torch.autograd.grad(ours, trained)

    assert ours.item() == pytest.approx(own.item(), rel=1e-5)
    for a, b in zip(our_grads, own_grads, strict=True):
        assert_close_to_scale(a, b)


def test_only_labelled_positions_reach_the_output_layer(model_dirs):
    model = AutoModelForCausalLM.from_pretrained(model_dirs["gpt2"], dtype=torch.float32)
    batch = batch_of(model.config.vocab_size)
    seen = []
    output_layer(model).register_forward_hook(lambda m, i, out: seen.append(out.shape))
    loss = labelled_token_loss(model, batch)
    predicted = int((batch["labels"][:, 1:] != -100).sum())
    assert seen == [(predicted, model.config.vocab_size)]  # not rows x length x vocab
    assert loss.item() == pytest.approx(model(**batch).loss.item(), rel=1e-5)
    model(**batch)  # the hook is gone afterwards: the usual logits again
    assert seen[-1] == (3, 12, model.config.vocab_size)
