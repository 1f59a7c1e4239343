"""What grpo and rloo share: prompts with the fields a reward checks (an answer), rewards as
Python functions (rewards.py), the policy from the base model or a finished sft run, TRL as the
trainer, and the evaluation: greedy answers to held-out prompts, pass@1 (every correctness
reward satisfied), the mean of each reward, and example completions before and after.
`VerifiableTask` is their base; each task file adds its settings and its TRL trainer."""

from pathlib import Path
from typing import ClassVar

from datasets import Dataset
from pydantic import Field
from torch import nn

from tunelab.config import split_seed
from tunelab.config.settings import PromptedTaskSettings
from tunelab.data.lm_prepare import split_files
from tunelab.data.preference import prompt_of
from tunelab.data.readers import read_records
from tunelab.data.templates import adds_special_tokens, generation_prompt, resolve_template
from tunelab.errors import DataError, TunelabError
from tunelab.generation import generate
from tunelab.methods import MethodSpec, full_or_lora
from tunelab.tasks.base import Score, Task, prompt_record
from tunelab.tasks.rl.report import rl_report
from tunelab.tasks.rl.rewards import Reward, RewardSpec, build_rewards, check_answer_fields


class RlSettings(PromptedTaskSettings):
    rewards: list[RewardSpec] = Field(
        default_factory=lambda: [RewardSpec(function="exact_number")],
        min_length=1,
        description="Reward functions and weights (default: exact_number on `answer`).",
    )
    num_generations: int = Field(4, ge=2, description="Completions sampled per prompt (a group).")
    max_completion_length: int = Field(32, ge=1, description="Tokens per sampled completion.")
    beta: float = Field(0.04, ge=0, description="KL penalty to the reference (0: none).")
    epsilon: float = Field(0.2, gt=0, description="Clip range of the policy ratio.")
    temperature: float = Field(1.0, gt=0, description="Sampling temperature of completions.")


def check_group_batch(settings: RlSettings, batch_size: int) -> None:
    """TRL samples whole groups: a batch of completions holds num_generations per prompt."""
    if batch_size % settings.num_generations:
        raise TunelabError(
            f"train.batch_size ({batch_size}) must be a multiple of task.num_generations "
            f"({settings.num_generations}): a batch holds whole groups of completions"
        )


def read_prompt_rows(source: str, fmt: str) -> list[dict]:
    """One dict per row: `question` (prompt, question or instruction+input), the row's other
    scalar fields (the answers a reward reads), and where it came from."""
    path, records = read_records(source, fmt)
    rows = []
    for number, record in records:
        if "question" in record and "prompt" not in record:
            record = {**record, "prompt": record["question"]}
        question = prompt_of(record, path, number)
        extra = {k: v for k, v in record.items() if isinstance(v, str | int | float | bool)}
        rows.append({**extra, "question": question, "_row": number, "_file": str(path)})
    if not rows:
        raise DataError(path, "no data rows")
    return rows


class VerifiableTask(Task):
    model_kind: ClassVar = "causal_lm"
    trainer: ClassVar = "trl"
    score: ClassVar = Score("pass_at_1")
    ignores: ClassVar = frozenset({"data.mix"})

    @classmethod
    def accepts(cls, method: MethodSpec) -> bool:
        return full_or_lora(method)  # TRL's GRPO and RLOO trainers

    def prepare(self) -> dict:
        config = self.config
        check_group_batch(config.task, config.train.batch_size)
        self.template = resolve_template(config.task.template, self.tokenizer)
        self.splits = split_files(
            config.data, split_seed(config), lambda path: read_prompt_rows(path, config.data.format)
        )
        for rows in self.splits.values():
            check_answer_fields(config.task.rewards, rows)
        self.rewards: list[Reward] = build_rewards(
            config.task.rewards, self.tokenizer, config.eval.batch_size
        )
        splits = {name: {"prompts": len(rows)} for name, rows in self.splits.items()}
        return {
            "template": self.template,
            "splits": splits,
            "rewards": [r.name for r in self.rewards],
        }

    @property
    def add_special_tokens(self) -> bool:
        return adds_special_tokens(self.template)

    def render(self, question: str) -> str:
        messages = [{"role": "user", "content": question}]
        return generation_prompt(messages, self.template, self.tokenizer, self.config.task.system)

    def dataset(self, split: str) -> Dataset:
        """TRL's rows: the rendered `prompt` plus every field the rewards may read."""
        rows = [{**row, "prompt": self.render(row["question"])} for row in self.splits[split]]
        return Dataset.from_list(rows)

    def train_size(self) -> int:
        return len(self.splits["train"]) * self.config.task.num_generations

    def preview_texts(self, rows: int) -> list[str]:
        """Each problem as the policy is asked it, and the answer its rewards check against."""
        return [
            f"{self.render(r['question'])}\n[answer] {r.get('answer', '')}"
            for r in self.splits["train"][:rows]
        ]

    def split_texts(self) -> dict[str, list[str]]:
        return {name: [r["question"] for r in rows] for name, rows in self.splits.items()}

    def load_model(self) -> nn.Module:
        return self.run.causal_lm()

    def trl_inputs(self, model: nn.Module, args, callbacks: list) -> dict:
        return {
            "model": model,
            "reward_funcs": [r.function for r in self.rewards],
            "args": args,
            "train_dataset": self.dataset("train"),
            "eval_dataset": self.dataset("val"),
            "processing_class": self.tokenizer,
            "callbacks": callbacks,
        }

    def sampling_arguments(self) -> dict:
        """The settings GRPOConfig and RLOOConfig share."""
        settings = self.config.task
        return {
            "num_generations": settings.num_generations,
            "max_completion_length": settings.max_completion_length,
            "beta": settings.beta,
            "epsilon": settings.epsilon,
            "temperature": settings.temperature,
            "reward_weights": [r.weight for r in self.rewards],
            "log_completions": False,
        }

    def evaluate(self, model: nn.Module) -> dict:
        """Greedy answers to the held-out prompts, each reward's mean and pass@1."""
        rows, config = self.splits["test"], self.config
        prompts = [self.render(r["question"]) for r in rows]
        completions = generate(
            model,
            self.tokenizer,
            prompts,
            config.task.max_completion_length,
            config.eval.batch_size,
            add_special_tokens=self.add_special_tokens,
            description=f"answering {len(rows)} held-out prompts",
        )
        fields = {key: [r.get(key) for r in rows] for key in rows[0]}
        scores = {r.name: r.function(prompts, completions, **fields) for r in self.rewards}
        total = [sum(r.weight * scores[r.name][i] for r in self.rewards) for i in range(len(rows))]
        correct = [r.name for r in self.rewards if r.correctness]
        passed = [all(scores[name][i] >= 1.0 for name in correct) for i in range(len(rows))]
        examples = [
            {
                "question": row["question"],
                "answer": completion,
                "reward": total[i],
                "passed": passed[i] if correct else None,
            }
            for i, (row, completion) in enumerate(zip(rows, completions, strict=True))
        ]
        return {
            "n": len(rows),
            "pass_at_1": sum(passed) / len(rows) if correct else None,
            "mean_reward": sum(total) / len(rows),
            "rewards": {name: sum(values) / len(rows) for name, values in scores.items()},
            "examples": examples[: config.eval.examples],
            # every prompt's outcome, in the split's order: compare's paired bootstrap
            "per_example": {
                "mean_reward": total,
                **({"pass_at_1": [float(p) for p in passed]} if correct else {}),
            },
        }

    def scores(self, before: dict, after: dict) -> dict:
        """pass@1 ranks runs when a correctness reward is named; else the mean reward."""
        key = "pass_at_1" if after.get("pass_at_1") is not None else "mean_reward"
        return {
            "score_name": key,
            "higher_is_better": True,
            "score_before": before[key],
            "score": after[key],
            "score_field": key,
            "mean_reward_before": before["mean_reward"],
            "mean_reward": after["mean_reward"],
        }

    def record(self) -> dict:
        return prompt_record(self.config, self.template)

    @classmethod
    def report(cls, run_dir: Path, data: dict, before: dict, after: dict) -> list[str]:
        return rl_report(run_dir, data, before, after)
