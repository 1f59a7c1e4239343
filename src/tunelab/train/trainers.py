"""Trainers by name: the shared loop, the TRL bridge and PPO. A task names the one that fits it.

Every trainer reads the same `train` section. A setting a trainer cannot honour is refused
with a one-line error when the run starts (`check_settings`), never silently ignored."""

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from tunelab.config import TrainConfig
from tunelab.errors import TunelabError
from tunelab.registry import Registry
from tunelab.runtime import (
    PrecisionChoice,
    check_deepspeed,
    deepspeed_config,
    process_state,
    resolve_precision,
)
from tunelab.tasks.base import Task, changed_fields
from tunelab.train.loop import FitState

# fit(task, model) -> (the trained model, what happened); the task's run context has the rest.
FitFn = Callable[[Task, nn.Module], tuple[nn.Module, FitState]]


@dataclass(frozen=True)
class TrainerSpec:
    name: str
    fit: FitFn
    ignores: frozenset[str] = frozenset()  # train fields it cannot honour
    bf16_weights: bool = False  # holds frozen weights in bf16 during a bf16 CPU epoch (the loop)

    def precision(self, config: TrainConfig) -> PrecisionChoice:
        """The precision this trainer runs train.precision in, and why."""
        if "precision" in self.ignores:
            return PrecisionChoice("fp32", f"fp32: the {self.name} trainer computes in fp32")
        return resolve_precision(config, self.bf16_weights)


TRAINERS: Registry[TrainerSpec] = Registry("trainer")


def register_trainer(spec: TrainerSpec) -> TrainerSpec:
    return TRAINERS.register(spec.name)(spec)


def check_settings(spec: TrainerSpec, config: TrainConfig, task: type[Task]) -> None:
    """Refuse a train setting the user changed and this trainer would not honour. A default
    written out (a finished run's config.yaml holds every field) changes nothing: accepted."""
    unused = sorted(set(changed_fields(config)) & spec.ignores)
    if unused:
        raise TunelabError(
            f"train.{unused[0]}: task '{task.name}' trains with the {spec.name} trainer, "
            "which does not use it"
        )
    if config.distributed == "deepspeed" and "distributed" not in spec.ignores:
        check_deepspeed(config, deepspeed_config(config, process_state().num_processes))
    if config.monitor not in task.monitors:
        raise TunelabError(
            f"train.monitor: task '{task.name}' can follow {', '.join(sorted(task.monitors))}, "
            f"not {config.monitor}"
        )
