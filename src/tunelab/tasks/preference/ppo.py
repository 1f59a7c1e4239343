"""ppo: RLHF's last step. A LoRA policy answers prompts, a finished reward run scores the
answers, and tunelab's own PPO (train/ppo.py; TRL 1.x has none) updates the policy with a KL
penalty to its adapter-disabled self. Scored by the mean reward of greedy answers to held-out
prompts."""

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from tunelab.artifacts import load_run
from tunelab.config import split_seed
from tunelab.config.settings import PromptedTaskSettings
from tunelab.data.lm_prepare import split_by_fractions
from tunelab.data.preference import read_prompts
from tunelab.data.templates import adds_special_tokens, generation_prompt, resolve_template
from tunelab.errors import TunelabError
from tunelab.generation import generate
from tunelab.methods import LOW_RANK, MethodSpec
from tunelab.run_record import read_record
from tunelab.tasks.base import Score, Task, prompt_record, register_task
from tunelab.tasks.preference.evaluate import reward_scores
from tunelab.tasks.preference.report import ppo_report


class PpoSettings(PromptedTaskSettings):
    name: Literal["ppo"] = "ppo"
    reward_run: str = Field(description="The run directory of a finished reward run.")
    beta: float = Field(0.1, gt=0, description="Per-token KL penalty to the reference.")
    ppo_epochs: int = Field(2, ge=1, description="Optimisation passes per batch of rollouts.")
    clip: float = Field(0.2, gt=0, description="Ratio clip range (also the value clip).")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature of rollouts.")


def reward_scorer(reward_run: str, batch_size: int):
    """score(questions, responses): the reward run's model on its own template's rendering."""
    kind = read_record(reward_run)  # checked before its model loads
    if "score" not in kind.abilities:
        raise TunelabError(f"task.reward_run: {reward_run} is a {kind.task} run, not a reward run")
    model, tokenizer, record = load_run(reward_run)
    template = record.template or "plain"

    def score(questions: list[str], responses: list[str]) -> torch.Tensor:
        prompts = [
            generation_prompt([{"role": "user", "content": q}], template, tokenizer, record.system)
            for q in questions
        ]
        texts = [p + r + tokenizer.eos_token for p, r in zip(prompts, responses, strict=True)]
        return reward_scores(model, tokenizer, texts, batch_size)

    return score


@register_task
class PpoTask(Task):
    name = "ppo"
    settings = PpoSettings
    model_kind = "causal_lm"
    trainer = "ppo"
    score = Score("mean_reward")
    reward: Callable[[list[str], list[str]], torch.Tensor]  # set by prepare (the reward run)
    ignores = frozenset({"data.val_path", "data.test_path", "data.mix"})  # split by data.split

    @classmethod
    def accepts(cls, method: MethodSpec) -> bool:
        # the reference is the policy with its adapter disabled: the policy must be an adapter
        return method.can(LOW_RANK)

    def prepare(self) -> dict:
        config = self.config
        self.template = resolve_template(config.task.template, self.tokenizer)
        prompts = read_prompts(config.data.path, config.data.format)
        parts = split_by_fractions(prompts, config.data.split, split_seed(config))
        self.splits = dict(zip(("train", "val", "test"), parts, strict=True))
        self.splits["train"] = self.splits["train"][: config.data.limit_train]
        self.reward = reward_scorer(config.task.reward_run, config.eval.batch_size)
        splits = {name: {"prompts": len(rows)} for name, rows in self.splits.items()}
        return {"template": self.template, "splits": splits}

    @property
    def add_special_tokens(self) -> bool:
        return adds_special_tokens(self.template)

    def preview_texts(self, rows: int) -> list[str]:
        return [self.render(q) for q in self.splits["train"][:rows]]  # as the policy is asked

    def split_texts(self) -> dict[str, list[str]]:
        return self.splits

    def prompts(self, split: str) -> list[str]:
        return self.splits[split]

    def render(self, question: str) -> str:
        messages = [{"role": "user", "content": question}]
        return generation_prompt(messages, self.template, self.tokenizer, self.config.task.system)

    def load_model(self) -> nn.Module:
        return self.run.causal_lm()

    def answer(self, policy: nn.Module, split: str) -> dict:
        """Greedy answers to held-out prompts and their mean reward."""
        questions, config = self.splits[split], self.config.eval
        answers = generate(
            policy,
            self.tokenizer,
            [self.render(q) for q in questions],
            config.max_new_tokens,
            config.batch_size,
            add_special_tokens=self.add_special_tokens,
            description=f"answering {len(questions)} {split} prompts",
        )
        scores = self.reward(questions, answers)
        examples = [
            {"question": q, "answer": a, "reward": float(s)}
            for q, a, s in zip(questions, answers, scores, strict=True)
        ]
        mean = scores.mean().item()
        return {"n": len(questions), "mean_reward": mean, "examples": examples[: config.examples]}

    def evaluate(self, model: nn.Module) -> dict:
        return self.answer(model, "test")

    def validate(self, policy: nn.Module) -> dict:
        return self.answer(policy, "val")

    def record(self) -> dict:
        return prompt_record(self.config, self.template)

    @classmethod
    def report(cls, run_dir: Path, data: dict, before: dict, after: dict) -> list[str]:
        return ppo_report(run_dir, data, before, after)
