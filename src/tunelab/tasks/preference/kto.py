"""kto: Kahneman-Tversky optimisation on TRL's KTOTrainer. It learns from unpaired thumbs-up /
thumbs-down answers: each training pair's chosen answer becomes a desirable example and its
rejected answer an undesirable one (rows of their own, shuffled by the trainer). Scored like
DPO, by how often the implicit reward prefers the chosen answer on held-out pairs."""

from typing import Literal

from datasets import Dataset
from pydantic import Field
from torch import nn

from tunelab.tasks.base import register_task
from tunelab.tasks.preference.policy import PolicyPairTask, PolicySettings


class KtoSettings(PolicySettings):
    name: Literal["kto"] = "kto"
    desirable_weight: float = Field(1.0, gt=0, description="Loss weight of thumbs-up answers.")
    undesirable_weight: float = Field(1.0, gt=0, description="Loss weight of thumbs-down answers.")


@register_task
class KtoTask(PolicyPairTask):
    name = "kto"
    settings = KtoSettings

    def dataset(self, name: str) -> Dataset:
        """Unpaired rows: {prompt, completion, label} with label True for the chosen answer."""
        rows = []
        for pair in self.splits[name]:
            prompt = self.prompt(pair)
            rows.append({"prompt": prompt, "completion": pair.chosen, "label": True})
            rows.append({"prompt": prompt, "completion": pair.rejected, "label": False})
        return Dataset.from_list(rows)

    def train_size(self) -> int:
        return 2 * len(self.splits["train"])  # two labelled answers per pair

    def trl_trainer(self, model: nn.Module, arguments: dict, callbacks: list):
        from trl import KTOConfig, KTOTrainer

        settings = self.config.task
        args = KTOConfig(
            **arguments,
            beta=settings.beta,
            desirable_weight=settings.desirable_weight,
            undesirable_weight=settings.undesirable_weight,
            max_length=self.config.data.max_length,
        )
        return KTOTrainer(**self.trainer_inputs(model, args, callbacks), ref_model=self.reference)
