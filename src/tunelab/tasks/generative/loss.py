"""The loss shared by the generative tasks (sft, pretrain): next-token cross-entropy on the
positions whose label is not -100, computing the vocabulary projection at those positions only.

Why by hand: a Transformers causal LM projects every position onto the vocabulary (49k wide on
SmolLM2) before its loss drops the prompt positions; on instruction data most positions are
prompt, and the projection with its softmax is a fifth of a LoRA step's work and the largest
tensor in memory. Transformers' `logits_to_keep` selects sequence positions shared by the whole
batch, not per row, so a forward pre-hook on the output layer hands it the labelled rows only.
"""

from contextlib import contextmanager

import torch
import torch.nn.functional as F

from tunelab.data.lm_encode import IGNORE


def output_layer(model: torch.nn.Module) -> torch.nn.Module:
    """The vocabulary projection, through the DDP and PEFT wrappers."""
    return getattr(model, "module", model).get_output_embeddings()


@contextmanager
def project_only(model: torch.nn.Module, predicting: torch.Tensor):
    """While inside, the output layer sees the hidden states of the `predicting` positions
    only (a [batch, seq] mask) and the model's logits come back as [positions, vocab]."""

    def select(_module, args):
        hidden = args[0]
        # prompt tuning prepends virtual tokens: the real positions are the last ones
        return (hidden[:, -predicting.shape[1] :][predicting], *args[1:])

    handle = output_layer(model).register_forward_pre_hook(select)
    try:
        yield
    finally:
        handle.remove()


def labelled_token_loss(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    """Mean cross-entropy over the labelled next tokens; the model's own loss, less the work."""
    labels = batch["labels"]
    targets = labels[:, 1:]
    predicting = torch.zeros_like(labels, dtype=torch.bool)
    predicting[:, :-1] = targets != IGNORE
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    if "position_ids" in inputs:
        # packed rows: Transformers builds the block-diagonal mask from the restarting positions
        # only without an attention mask and without a KV cache (a training step needs none)
        inputs.pop("attention_mask", None)
        inputs["use_cache"] = False
    with project_only(model, predicting):
        logits = model(**inputs).logits
    if not predicting.any():  # nothing to learn from in this batch: a zero that keeps the graph
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), targets[predicting[:, :-1]])


def causal_lm_loss(model: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, None]:
    return labelled_token_loss(model, batch), None


def labelled_targets(batch: dict) -> int:
    """What labelled_token_loss averages over: the labelled next tokens."""
    return int((batch["labels"][:, 1:] != IGNORE).sum())
