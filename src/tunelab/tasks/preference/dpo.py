"""dpo: direct preference optimisation on TRL's DPOTrainer; the reference is the policy with its
adapter disabled (LoRA / QLoRA) or a frozen copy (full). Scored by how often the implicit reward
prefers the chosen answer on held-out pairs."""

from typing import Literal

from datasets import Dataset
from pydantic import Field
from torch import nn

from tunelab.settings import PromptedTaskSettings
from tunelab.tasks.base import Score, register_task
from tunelab.tasks.preference.pairs import PairTask
from tunelab.tasks.preference.policy import load_policy, policy_metrics
from tunelab.tasks.preference.report import preference_panel

# TRL's names for the implicit reward's accuracy and margin on the validation pairs
POLICY_PANEL = preference_panel("val_rewards/accuracies", "val_rewards/margins")


class DpoSettings(PromptedTaskSettings):
    name: Literal["dpo"] = "dpo"
    beta: float = Field(0.1, gt=0, description="Strength of the pull to the reference model.")


@register_task
class DpoTask(PairTask):
    name = "dpo"
    settings = DpoSettings
    model_kind = "causal_lm"
    score = Score("preference_accuracy", "accuracy")
    panel = POLICY_PANEL

    def dataset(self, name: str) -> Dataset:
        rows = [
            {"prompt": self.prompt(p), "chosen": p.chosen, "rejected": p.rejected}
            for p in self.splits[name]
        ]
        return Dataset.from_list(rows)

    def load_model(self) -> nn.Module:
        model, self.reference = load_policy(self)
        return model

    def evaluate(self, model: nn.Module) -> dict:
        return policy_metrics(self, model, self.reference)

    def trl_trainer(self, model: nn.Module, arguments: dict, callbacks: list):
        from trl import DPOConfig, DPOTrainer

        args = DPOConfig(
            **arguments, beta=self.config.task.beta, max_length=self.config.data.max_length
        )
        return DPOTrainer(
            model=model,
            ref_model=self.reference,
            args=args,
            train_dataset=self.dataset("train"),
            eval_dataset=self.dataset("val"),
            processing_class=self.tokenizer,
            callbacks=callbacks,
        )
