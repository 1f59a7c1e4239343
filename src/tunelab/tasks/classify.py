"""classify: a new head over the pooled hidden state; cross-entropy; accuracy, P/R/F1, confusion."""

import numpy as np
import torch

from tunelab.errors import TunelabError
from tunelab.tasks.base import TASKS, Task
from tunelab.tasks.causal_lm import GENERATIVE_METHODS


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
    }


def check_pooling(pooling: str, is_encoder: bool) -> None:
    """Transformers pools natively: last non-padding token for decoders, CLS for encoders;
    `mean` (our MeanPoolingClassifier) works on both."""
    native = "cls" if is_encoder else "last_token"
    if pooling not in ("auto", "mean", native):
        kind = "encoder" if is_encoder else "decoder"
        raise TunelabError(
            f"task.pooling: '{pooling}' is not available for a {kind} model; use '{native}'"
        )


TASKS.register("classify")(
    Task(
        name="classify",
        compute_loss=classification_loss,
        metrics=classification_metrics,
        model_kind="classifier",
        methods=GENERATIVE_METHODS | {"head"},  # every method; head adds the new head only
    )
)
