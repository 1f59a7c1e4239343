"""What a task supplies to the shared loop: its loss, its metrics and the methods it accepts."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from tunelab.registry import Registry

LossFn = Callable[[torch.nn.Module, dict], tuple[torch.Tensor, torch.Tensor]]
MetricsFn = Callable[[np.ndarray, np.ndarray, list[str]], dict]


@dataclass(frozen=True)
class Task:
    name: str
    compute_loss: LossFn  # (model, batch) -> (mean loss, logits)
    metrics: MetricsFn  # (true label ids, class probabilities, label names) -> metrics
    methods: frozenset[str]


TASKS: Registry[Task] = Registry("task")
