"""dpo: direct preference optimisation on TRL's DPOTrainer; the reference is the policy with its
adapter disabled (LoRA / QLoRA) or a frozen copy (full). Scored by how often the implicit reward
prefers the chosen answer on held-out pairs."""

from typing import Literal

from torch import nn

from tunelab.tasks.base import register_task
from tunelab.tasks.preference.policy import PolicyPairTask, PolicySettings


class DpoSettings(PolicySettings):
    name: Literal["dpo"] = "dpo"


@register_task
class DpoTask(PolicyPairTask):
    name = "dpo"
    settings = DpoSettings

    def trl_trainer(self, model: nn.Module, arguments: dict, callbacks: list):
        from trl import DPOConfig, DPOTrainer

        args = DPOConfig(
            **arguments, beta=self.config.task.beta, max_length=self.config.data.max_length
        )
        return DPOTrainer(**self.trainer_inputs(model, args, callbacks), ref_model=self.reference)
