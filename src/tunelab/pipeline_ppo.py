"""The ppo task's stages: prompts -> LoRA policy + value head -> rollouts scored by a reward
run -> PPO steps -> mean reward on held-out prompts before/after -> report."""

import random
import time
from pathlib import Path

import torch
from accelerate.utils import set_seed
from torch import nn

from tunelab.artifacts import load_run, save_artifact, write_run_info
from tunelab.config import RunConfig, save_config
from tunelab.data.lm_prepare import split_by_fractions
from tunelab.data.preference import read_prompts
from tunelab.data.templates import generation_prompt, resolve_template
from tunelab.errors import TunelabError
from tunelab.evaluate_pref import reward_scores
from tunelab.generation import generate
from tunelab.models.anatomy import describe
from tunelab.models.loader import load_causal_lm, load_tokenizer
from tunelab.pipeline_lm import lm_run_info
from tunelab.report import write_report
from tunelab.run_common import base_summary, prepare_run_dir, start_model, write_json
from tunelab.train.loop import FitState
from tunelab.train.metrics_log import MetricsLog
from tunelab.train.ppo import PpoLearner, PpoSettings
from tunelab.train.progress import training_progress


def reward_scorer(reward_run: str, batch_size: int):
    """score(questions, responses): the reward run's model on its own template's rendering."""
    model, tokenizer, info = load_run(reward_run)
    if info.get("task") != "reward":
        raise TunelabError(
            f"task.reward_run: {reward_run} is a {info.get('task')} run, not a reward run"
        )
    template = info.get("template") or "plain"

    def score(questions: list[str], responses: list[str]) -> torch.Tensor:
        texts = [
            generation_prompt([{"role": "user", "content": q}], template, tokenizer, info.get("system"))
            + r + tokenizer.eos_token
            for q, r in zip(questions, responses, strict=True)
        ]  # fmt: skip
        return reward_scores(model, tokenizer, texts, batch_size)

    return score


class PpoRun:
    def __init__(self, config: RunConfig, spec):
        if not config.task.reward_run:
            raise TunelabError("task.reward_run: ppo needs the run directory of a reward model")
        self.config, self.spec = config, spec
        self.model_path = start_model(config.model.name)
        self.tokenizer = load_tokenizer(self.model_path, config.model.trust_remote_code)
        self.template = resolve_template(config.task.template, self.tokenizer)
        prompts = read_prompts(config.data.path, config.data.format)
        parts = split_by_fractions(prompts, config.data.split, config.train.seed)
        self.splits = dict(zip(("train", "val", "test"), parts, strict=True))
        self.splits["train"] = self.splits["train"][: config.data.limit_train]
        self.score = reward_scorer(config.task.reward_run, config.eval.batch_size)

    def render(self, question: str) -> str:
        messages = [{"role": "user", "content": question}]
        return generation_prompt(messages, self.template, self.tokenizer, self.config.task.system)

    def evaluate(self, policy, name: str, limit: int | None = None) -> dict:
        """Greedy answers to held-out prompts and their mean reward."""
        questions = self.splits[name][:limit]
        answers = generate(policy, self.tokenizer, [self.render(q) for q in questions], self.config.eval.max_new_tokens,
                           self.config.eval.batch_size, add_special_tokens=self.template != "chat",
                           description=f"answering {len(questions)} {name} prompts")  # fmt: skip
        scores = self.score(questions, answers)
        examples = [
            {"question": q, "answer": a, "reward": float(s)}
            for q, a, s in zip(questions, answers, scores, strict=True)
        ]
        return {
            "n": len(questions),
            "mean_reward": scores.mean().item(),
            "examples": examples[: self.config.eval.examples],
        }

    def learner(self, policy) -> PpoLearner:
        task, train = self.config.task, self.config.train
        value_head = nn.Linear(policy.config.hidden_size, 1)
        nn.init.zeros_(value_head.weight)
        nn.init.zeros_(value_head.bias)
        params = [p for p in policy.parameters() if p.requires_grad] + list(value_head.parameters())
        optimizer = torch.optim.AdamW(params, lr=train.lr, weight_decay=train.weight_decay)
        settings = PpoSettings(kl_coef=task.beta, clip=task.clip, ppo_epochs=task.ppo_epochs,
                               max_new_tokens=self.config.eval.max_new_tokens, temperature=task.temperature)  # fmt: skip
        return PpoLearner(
            policy, value_head, self.tokenizer, self.render, self.score, settings, optimizer
        )

    def fit(self, policy, run_dir: Path) -> FitState:
        train, log = self.config.train, MetricsLog(run_dir / "metrics.jsonl")
        learner, state, rng = self.learner(policy), FitState(), random.Random(train.seed)
        started = time.perf_counter()
        with training_progress(True) as progress:
            for epoch in range(1, train.epochs + 1):
                prompts = rng.sample(self.splits["train"], len(self.splits["train"]))
                batches = [
                    prompts[i : i + train.batch_size]
                    for i in range(0, len(prompts), train.batch_size)
                ]
                bar = progress.add_task(
                    f"ppo epoch {epoch}/{train.epochs}", total=len(batches), loss=0.0, tps=0.0
                )
                rewards = []
                for batch in batches:
                    metrics = learner.step(batch, add_special_tokens=self.template != "chat")
                    state.step += 1
                    rewards.append(metrics["reward"])
                    log.write({"event": "train", "epoch": epoch, "step": state.step, **metrics})
                    progress.update(bar, advance=1, loss=metrics["loss"])
                val = self.evaluate(policy, "val")
                log.write({"event": "eval", "split": "val", "epoch": epoch, "train_reward": sum(rewards) / len(rewards),
                           "val_reward": val["mean_reward"], "train_seconds": time.perf_counter() - started})  # fmt: skip
                state.epoch = epoch
        state.seconds = time.perf_counter() - started
        return state


def run_ppo(config: RunConfig, task, spec, resume: bool = False) -> dict:
    if resume:  # no mid-run checkpoints here: an unfinished run starts again from the beginning
        (Path(config.output.dir) / "metrics.jsonl").unlink(missing_ok=True)
    run_dir = Path(config.output.dir)
    prepare_run_dir(run_dir, resume)
    set_seed(config.train.seed)
    job = PpoRun(config, spec)
    policy = load_causal_lm(
        job.model_path, config.model.trust_remote_code, **spec.options(config.method)
    )
    policy = spec.apply(policy, config.method, describe(policy))
    save_config(config, run_dir / "config.yaml")
    write_json(
        run_dir / "data_summary.json",
        {
            "template": job.template,
            "splits": {k: {"prompts": len(v)} for k, v in job.splits.items()},
        },
    )
    before = job.evaluate(policy, "test")
    started = time.perf_counter()
    state = job.fit(policy, run_dir)
    after = job.evaluate(policy, "test")
    summary = base_summary(spec, task, config, policy, state, started, processes=1)
    summary.update(
        score_name="mean_reward", score_before=before["mean_reward"], score=after["mean_reward"]
    )
    write_json(run_dir / "eval_before.json", before)
    write_json(run_dir / "eval_after.json", after)
    write_json(run_dir / "train_summary.json", summary)
    save_artifact(policy, job.tokenizer, run_dir / spec.artifact, spec.artifact)
    write_run_info(run_dir, lm_run_info(spec, task, config, job.model_path, job.template, []))
    write_report(run_dir)
    return summary
