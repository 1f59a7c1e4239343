"""orpo: odds-ratio preference optimisation on TRL's ORPOTrainer (trl.experimental in 1.16). No
reference model: the SFT loss on the chosen answer plus a penalty on the odds ratio of chosen to
rejected, in one stage from the base model. Scored reference-free, by how often the policy gives
the chosen answer the higher mean log-probability per token on held-out pairs."""

from typing import ClassVar, Literal

from torch import nn

from tunelab.tasks.base import Score, register_task
from tunelab.tasks.preference.policy import PolicyPairTask, PolicySettings


class OrpoSettings(PolicySettings):
    name: Literal["orpo"] = "orpo"


@register_task
class OrpoTask(PolicyPairTask):
    name = "orpo"
    settings = OrpoSettings
    # ORPO's odds ratio is of mean per-token probabilities: the summed log-probability ranks
    # pairs mostly by length, which ORPO does not train (smollm2: 0.56 -> 0.56, docs/rl.md)
    score: ClassVar = Score("policy_accuracy_per_token")

    def load_model(self) -> nn.Module:
        self.reference = None  # reference-free; a full run's metrics use the policy itself
        return self.run.causal_lm()

    def trl_trainer(self, model: nn.Module, arguments: dict, callbacks: list):
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        args = ORPOConfig(
            **arguments, beta=self.config.task.beta, max_length=self.config.data.max_length
        )
        return ORPOTrainer(**self.trainer_inputs(model, args, callbacks))
