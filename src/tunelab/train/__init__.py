"""Trainers by name (the shared loop, the TRL bridge, PPO); importing registers all three."""

from tunelab.train import loop_trainer, ppo, trl_bridge  # noqa: F401 - registration side effect
from tunelab.train.loop import FitState
from tunelab.train.trainers import TRAINERS, TrainerSpec, check_settings

__all__ = ["TRAINERS", "FitState", "TrainerSpec", "check_settings"]
