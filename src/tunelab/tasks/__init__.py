"""Tasks: what is learned. Each is one unit (tasks/base.py); importing registers every task."""

from tunelab.tasks import classify, generative, preference, rl  # noqa: F401 - registration
from tunelab.tasks.base import (
    TASKS,
    RunContext,
    Score,
    Task,
    check_method,
    check_read_settings,
    register_task,
)

__all__ = [
    "TASKS",
    "RunContext",
    "Score",
    "Task",
    "check_method",
    "check_read_settings",
    "register_task",
]
