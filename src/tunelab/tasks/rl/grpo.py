"""grpo: group relative policy optimisation on TRL's GRPOTrainer. Each prompt gets a group of
sampled completions; their rewards (task.rewards: Python functions) are compared within the
group, so no value model is needed. Scored by held-out pass@1 with greedy answers."""

from typing import Literal

from pydantic import Field
from torch import nn

from tunelab.tasks.base import register_task
from tunelab.tasks.rl.verifiable import RlSettings, VerifiableTask


class GrpoSettings(RlSettings):
    name: Literal["grpo"] = "grpo"
    loss_type: Literal["grpo", "dapo", "dr_grpo", "bnpo"] = Field(
        "dapo",
        description="How token losses are summed: grpo (per sequence), dapo (TRL's default: "
        "over the batch's tokens), dr_grpo (a constant), bnpo (the local batch's tokens).",
    )
    scale_rewards: Literal["group", "batch", "none"] = Field(
        "group", description="Divide advantages by the group's or batch's reward spread, or not."
    )


@register_task
class GrpoTask(VerifiableTask):
    name = "grpo"
    settings = GrpoSettings

    def trl_trainer(self, model: nn.Module, arguments: dict, callbacks: list):
        from trl import GRPOConfig, GRPOTrainer

        settings = self.config.task
        args = GRPOConfig(
            **arguments,
            **self.sampling_arguments(),
            loss_type=settings.loss_type,
            scale_rewards=settings.scale_rewards,
        )
        return GRPOTrainer(**self.trl_inputs(model, args, callbacks))
