"""The preference family: reward, dpo, kto, ppo (importing registers them)."""

from tunelab.tasks.preference import dpo, kto, ppo, reward  # noqa: F401 - registration
