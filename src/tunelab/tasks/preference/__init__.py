"""The preference family: reward, dpo, kto, orpo, ppo (importing registers them)."""

from tunelab.tasks.preference import dpo, kto, orpo, ppo, reward  # noqa: F401 - registration
