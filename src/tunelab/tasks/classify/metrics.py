"""Classification: the loss, class probabilities and metrics of a model on encoded examples."""

import numpy as np
import torch
from accelerate import Accelerator
from transformers import PreTrainedTokenizerBase

from tunelab.data.encode import encode_rows, make_loader
from tunelab.data.micro_batches import FORWARD_TOKENS, micro_batches
from tunelab.data.readers import Row
from tunelab.errors import TunelabError
from tunelab.run_record import RunRecord


def classification_loss(model: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy and the number of rows predicted right."""
    # Transformers' *ForSequenceClassification pools (last non-padding token for decoders,
    # CLS for encoders), applies the head, and computes cross-entropy when labels are given.
    outputs = model(**batch)
    return outputs.loss, (outputs.logits.argmax(-1) == batch["labels"]).sum()


def classification_metrics(labels: np.ndarray, probs: np.ndarray, names: list[str]) -> dict:
    # imported here: scikit-learn's 37 MB then load after the evaluation's activations are freed
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    predicted = probs.argmax(axis=1)
    ids = list(range(len(names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=ids, zero_division=0
    )
    return {
        "n": int(len(labels)),
        "accuracy": float((predicted == labels).mean()),
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": confusion_matrix(labels, predicted, labels=ids).tolist(),
        "labels": names,
        # every row right (1) or wrong (0), in the split's order: compare's paired bootstrap
        "per_example": {"accuracy": (predicted == labels).astype(int).tolist()},
    }


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
    examples: list[dict],
    labels: list[str],
    tokenizer: PreTrainedTokenizerBase,
    batch_size: int,
    accelerator: Accelerator | None = None,
) -> dict:
    probs, loss = predict(model, examples, tokenizer, batch_size, accelerator)
    true = np.array([example["labels"] for example in examples])
    return {"loss": loss, **classification_metrics(true, probs, labels)}


def classify_with(
    model, tokenizer, record: RunRecord, texts: list[str], batch_size: int = 32
) -> list[dict]:
    """Label and per-class probabilities of new texts with a loaded classifier run (`tunelab
    predict`, the server, an sft run's scope guard)."""
    labels = record.labels
    rows = [Row(text=t, label=labels[0], row=i + 1, file="<input>") for i, t in enumerate(texts)]
    encoded = encode_rows(
        rows, tokenizer, {labels[0]: 0}, record.max_length, "truncate", record.truncation_side
    )
    probs, _ = predict(model, encoded.examples, tokenizer, batch_size)
    if not np.isfinite(probs).all():
        raise TunelabError("the model outputs NaN probabilities; its training diverged")
    return [
        {
            "text": text,
            "label": labels[int(p.argmax())],
            "probs": {label: round(float(x), 6) for label, x in zip(labels, p, strict=True)},
        }
        for text, p in zip(texts, probs, strict=True)
    ]
