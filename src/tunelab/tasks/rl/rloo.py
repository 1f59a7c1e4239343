"""rloo: REINFORCE leave-one-out on TRL's RLOOTrainer. Each completion's baseline is the mean
reward of the other completions of its prompt. Scored by held-out pass@1 with greedy answers."""

from typing import Literal

from torch import nn

from tunelab.tasks.base import register_task
from tunelab.tasks.rl.verifiable import RlSettings, VerifiableTask


class RlooSettings(RlSettings):
    name: Literal["rloo"] = "rloo"


@register_task
class RlooTask(VerifiableTask):
    name = "rloo"
    settings = RlooSettings

    def trl_trainer(self, model: nn.Module, arguments: dict, callbacks: list):
        from trl import RLOOConfig, RLOOTrainer

        args = RLOOConfig(**arguments, **self.sampling_arguments())
        return RLOOTrainer(**self.trl_inputs(model, args, callbacks))
