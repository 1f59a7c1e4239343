"""Evaluation: class probabilities and metrics of a model on encoded examples."""

import numpy as np
import torch
from accelerate import Accelerator
from transformers import PreTrainedTokenizerBase

from tunelab.data.encode import make_loader
from tunelab.tasks.base import Task
from tunelab.train.micro_batches import FORWARD_TOKENS, micro_batches


def inputs_of(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k != "labels"}


@torch.no_grad()
def predict(
    model: torch.nn.Module,
    examples: list[dict],
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int,
    accelerator: Accelerator | None = None,
) -> tuple[np.ndarray, float]:
    """Class probabilities in the order of `examples`, and the mean cross-entropy."""
    # Sorting by length puts rows of similar length together: far less padding to compute.
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))
    loader = make_loader([examples[i] for i in order], tokenizer, batch_size, shuffle=False)
    if accelerator is not None:
        loader = accelerator.prepare_data_loader(loader)
    was_training = model.training
    model.eval()
    chunks, labels = [], []
    for batch in loader:
        parts = micro_batches(batch, FORWARD_TOKENS)  # the same logits, less memory held
        logits = torch.cat([model(**inputs_of(part)).logits.float() for part in parts])
        if accelerator is not None:
            logits, batch_labels = accelerator.gather_for_metrics((logits, batch["labels"]))
        else:
            batch_labels = batch["labels"]
        chunks.append(logits.cpu())
        labels.append(batch_labels.cpu())
    model.train(was_training)
    logits, labels = torch.cat(chunks), torch.cat(labels)
    loss = torch.nn.functional.cross_entropy(logits, labels).item()
    probs = torch.empty_like(logits)
    probs[torch.tensor(order)] = logits.softmax(dim=-1)
    return probs.numpy(), loss


def evaluate(
    model: torch.nn.Module,
    task: Task,
    examples: list[dict],
    labels: list[str],
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int,
    accelerator: Accelerator | None = None,
) -> dict:
    probs, loss = predict(model, examples, tokenizer, batch_size, accelerator)
    true = np.array([example["labels"] for example in examples])
    return {"loss": loss, **task.metrics(true, probs, labels)}
