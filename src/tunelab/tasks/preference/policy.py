"""What the policy-trained preference tasks (dpo, kto, orpo) share: their beta, the causal LM policy
with its reference (the adapter switched off for LoRA / QLoRA, a second copy for full weights),
and the metrics on held-out pairs: the implicit reward's accuracy and margin, answers shown.
`PolicyPairTask` is their base; each task file adds its dataset and its TRL trainer."""

from typing import ClassVar

from datasets import Dataset
from pydantic import Field
from torch import nn

from tunelab.config.settings import PromptedTaskSettings
from tunelab.generation import generate
from tunelab.models.loader import load_causal_lm
from tunelab.tasks.base import Score
from tunelab.tasks.preference.evaluate import dpo_metrics
from tunelab.tasks.preference.pairs import PairTask
from tunelab.tasks.preference.report import preference_panel


class PolicySettings(PromptedTaskSettings):
    beta: float = Field(0.1, gt=0, description="Strength of the pull to the reference model.")


class PolicyPairTask(PairTask):
    model_kind: ClassVar = "causal_lm"
    score: ClassVar = Score("preference_accuracy", "accuracy")
    # TRL's names for the implicit reward's accuracy and margin on the validation pairs
    panel: ClassVar = preference_panel("val_rewards/accuracies", "val_rewards/margins")
    reference: nn.Module | None  # None: the policy with its adapter disabled

    def load_model(self) -> nn.Module:
        policy = self.run.causal_lm()
        adapter = self.run.method.artifact == "adapter"
        self.reference = (
            None
            if adapter
            else load_causal_lm(self.run.model_path, self.config.model.trust_remote_code)
        )
        return policy

    def dataset(self, name: str) -> Dataset:
        """TRL's paired rows (dpo, orpo); kto unpairs them."""
        rows = [
            {"prompt": self.prompt(p), "chosen": p.chosen, "rejected": p.rejected}
            for p in self.splits[name]
        ]
        return Dataset.from_list(rows)

    def evaluate(self, model: nn.Module) -> dict:
        test, config = self.splits["test"], self.config
        prompts = [self.prompt(p) for p in test]
        metrics = dpo_metrics(
            model,
            self.reference,
            self.tokenizer,
            prompts,
            [p.chosen for p in test],
            [p.rejected for p in test],
            config.task.beta,
            self.add_special_tokens,
            config.eval.batch_size,
        )
        shown = test[: config.eval.examples]
        answers = generate(
            model,
            self.tokenizer,
            prompts[: len(shown)],
            config.eval.max_new_tokens,
            add_special_tokens=self.add_special_tokens,
        )
        metrics["examples"] = [
            {"question": p.prompt, "chosen": p.chosen, "rejected": p.rejected, "answer": a}
            for p, a in zip(shown, answers, strict=True)
        ]
        return metrics
