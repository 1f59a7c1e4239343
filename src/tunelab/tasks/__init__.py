"""Tasks: what is learned (dataset view, loss, metrics); importing registers every task."""

from tunelab.tasks import classify, preference, pretrain, sft  # noqa: F401 - registration side effect
from tunelab.tasks.base import TASKS, Task

__all__ = ["TASKS", "Task"]
