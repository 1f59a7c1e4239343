"""Reinforcement learning with rewards a program computes: grpo, rloo (importing registers them)."""

from tunelab.tasks.rl import grpo, rloo  # noqa: F401 - registration
