"""What a task supplies to the shared loop: its loss, its metrics and the methods it accepts."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from tunelab.registry import Registry

# (model, batch) -> (mean loss, rows predicted right or None when the task predicts no class)
LossFn = Callable[[torch.nn.Module, dict], tuple[torch.Tensor, torch.Tensor | None]]
MetricsFn = Callable[[np.ndarray, np.ndarray, list[str]], dict]


@dataclass(frozen=True)
class Task:
    name: str
    compute_loss: LossFn
    methods: frozenset[str]
    # classifier: a new head on the pooled hidden state; causal_lm: the model's own LM head;
    # preference: trained on chosen/rejected pairs by TRL's trainers.
    model_kind: Literal["classifier", "causal_lm", "preference"] = "classifier"
    metrics: MetricsFn | None = None  # classifier: (true ids, probabilities, names) -> metrics
    # what compute_loss's mean is over in a batch (rows, or labelled tokens): the weights that
    # make micro-batches add up to the batch (train/micro_batches.py)
    loss_units: Callable[[dict], int] = lambda batch: len(batch["input_ids"])


TASKS: Registry[Task] = Registry("task")
