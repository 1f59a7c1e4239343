"""reward: a reward model (one-output head) from chosen/rejected pairs or ranked lists, on TRL's
RewardTrainer (Bradley-Terry loss); pairwise accuracy and margin on held-out pairs."""

from typing import Literal

from datasets import Dataset
from torch import nn

from tunelab.config.settings import PromptedTaskSettings
from tunelab.data.preference import Pair
from tunelab.models.loader import load_classifier
from tunelab.tasks.base import Score, register_task
from tunelab.tasks.preference.evaluate import reward_model_metrics
from tunelab.tasks.preference.pairs import PairTask
from tunelab.tasks.preference.report import preference_panel


class RewardSettings(PromptedTaskSettings):
    name: Literal["reward"] = "reward"


@register_task
class RewardTask(PairTask):
    name = "reward"
    settings = RewardSettings
    model_kind = "classifier"
    score = Score("pairwise_accuracy", "accuracy")
    panel = preference_panel("val_accuracy", "val_margin")

    def texts(self, pairs: list[Pair]) -> list[tuple[str, str]]:
        eos = self.tokenizer.eos_token  # TRL appends EOS to every training text; score alike
        return [(self.prompt(p) + p.chosen + eos, self.prompt(p) + p.rejected + eos) for p in pairs]

    def dataset(self, name: str) -> Dataset:
        rows = [{"chosen": c, "rejected": r} for c, r in self.texts(self.splits[name])]
        return Dataset.from_list(rows)

    def load_model(self) -> nn.Module:
        options = self.run.method.options(self.config.method)
        trust = self.config.model.trust_remote_code
        return load_classifier(self.run.model_path, ["reward"], self.tokenizer, trust, **options)

    def evaluate(self, model: nn.Module) -> dict:
        pairs = self.texts(self.splits["test"])
        return reward_model_metrics(model, self.tokenizer, pairs, self.config.eval.batch_size)

    def record(self) -> dict:
        return {**super().record(), "labels": ["reward"], "pooling": "last_token"}

    def trl_trainer(self, model: nn.Module, arguments: dict, callbacks: list):
        from trl import RewardConfig, RewardTrainer

        args = RewardConfig(**arguments, max_length=self.config.data.max_length)
        return RewardTrainer(**self.trainer_inputs(model, args, callbacks))
