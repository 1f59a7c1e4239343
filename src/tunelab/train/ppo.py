"""PPO for RLHF (InstructGPT's third step), written here because TRL 1.x ships no PPO trainer
(checked: trl 1.16 has neither `trl.PPOTrainer` nor an experimental PPO module); the learner
itself (rollouts, KL, GAE, the clipped objective) is train/ppo_learner.py.

The "ppo" trainer: the task supplies `prompts("train")`, `render(question)`,
`reward(questions, responses)`, `validate(policy)` (its `mean_reward`) and
`add_special_tokens`; its settings carry beta, clip, ppo_epochs and temperature. A checkpoint
after each epoch (adapter, value head, optimizer, random state) is what --resume continues from."""

import random
import time
from collections.abc import Callable
from typing import Protocol

import torch
from torch import nn

from tunelab.errors import notice
from tunelab.models.trainable import trainable_state
from tunelab.progress import training_progress
from tunelab.tasks.base import Task, register_trainer_hooks
from tunelab.train.checkpoint import load_checkpoint, restore_newest, save_checkpoint
from tunelab.train.guards import check_finite
from tunelab.train.loop import FitState
from tunelab.train.metrics_log import MetricsLog
from tunelab.train.ppo_learner import PpoLearner, PpoSettings
from tunelab.train.trainers import TrainerSpec, register_trainer


def make_learner(task: Task, policy: nn.Module) -> PpoLearner:
    settings, train = task.config.task, task.config.train
    value_head = nn.Linear(policy.config.hidden_size, 1, device=policy.device)
    nn.init.zeros_(value_head.weight)
    nn.init.zeros_(value_head.bias)
    params = [p for p in policy.parameters() if p.requires_grad] + list(value_head.parameters())
    optimizer = torch.optim.AdamW(params, lr=train.lr, weight_decay=train.weight_decay)
    ppo = PpoSettings(
        kl_coef=settings.beta,
        clip=settings.clip,
        ppo_epochs=settings.ppo_epochs,
        max_new_tokens=task.config.eval.max_new_tokens,
        temperature=settings.temperature,
        max_grad_norm=train.max_grad_norm,
    )
    return PpoLearner(policy, value_head, task.tokenizer, task.render, task.reward, ppo, optimizer)


def save_ppo(folder, learner: PpoLearner, state: FitState) -> None:
    extra = {
        "optimizer": learner.optimizer.state_dict(),
        "value_head": learner.value_head.state_dict(),
        "rng": torch.get_rng_state(),
        "fit": state.__dict__,
    }
    progress = {"epoch": state.epoch, "step": state.step}
    save_checkpoint(folder, trainable_state(learner.policy), extra, progress)


def resume_ppo(folder, learner: PpoLearner) -> FitState:
    saved = load_checkpoint(folder, learner.policy)
    learner.optimizer.load_state_dict(saved["optimizer"])
    learner.value_head.load_state_dict(saved["value_head"])
    torch.set_rng_state(saved["rng"])
    return FitState(**saved["fit"])


def ppo_epoch(task: Task, learner: PpoLearner, epoch: int, state: FitState, log, progress):
    """One pass over the training prompts in a seeded order; returns the mean rollout reward."""
    train = task.config.train
    prompts = task.prompts("train")
    prompts = random.Random(train.seed + epoch).sample(prompts, len(prompts))
    batches = [prompts[i : i + train.batch_size] for i in range(0, len(prompts), train.batch_size)]
    bar = progress.add_task(
        f"ppo epoch {epoch}/{train.epochs}", total=len(batches), loss=0.0, tps=0.0
    )
    rewards = []
    for batch in batches:
        metrics = learner.step(batch, add_special_tokens=task.add_special_tokens)
        where = f"epoch {epoch}, step {state.step + 1}"
        check_finite(metrics["loss"], "PPO loss", where, train.lr, task.run.run_dir)
        state.step += 1
        rewards.append(metrics["reward"])
        log.write({"event": "train", "epoch": epoch, "step": state.step, **metrics})
        progress.update(bar, advance=1, loss=metrics["loss"])
    return sum(rewards) / len(rewards)


def fit_ppo(task: Task, policy: nn.Module) -> tuple[nn.Module, FitState]:
    run, train = task.run, task.config.train
    log, learner = MetricsLog(run.run_dir / "metrics.jsonl"), make_learner(task, policy)
    last = run.run_dir / "checkpoints" / "last"
    restored = restore_newest(last, say=notice) if run.resume else None
    state = resume_ppo(restored, learner) if restored is not None else FitState()
    log.truncate_after(state.epoch)
    started = time.perf_counter() - state.seconds
    with training_progress(True) as progress:
        for epoch in range(state.epoch + 1, train.epochs + 1):
            train_reward = ppo_epoch(task, learner, epoch, state, log, progress)
            val = task.validate(policy)
            state.epoch, state.seconds = epoch, time.perf_counter() - started
            state.best_epoch = epoch  # PPO keeps its last policy (the report said epoch 0)
            log.write(
                {
                    "event": "eval",
                    "split": "val",
                    "epoch": epoch,
                    "train_reward": train_reward,
                    "val_reward": val["mean_reward"],
                    "train_seconds": state.seconds,
                }
            )
            save_ppo(last, learner, state)
            if train.max_minutes and state.seconds > 60 * train.max_minutes:
                break
    return policy, state


# PPO learns from its own rollouts: no batches to cut, no frozen blocks, no best epoch to keep.
register_trainer(
    TrainerSpec(
        "ppo",
        fit_ppo,
        frozenset(
            {
                "micro_batch_tokens",
                "max_tokens",  # compare's token budget counts the loop's batches
                "cache_frozen",
                "cache_max_gb",
                "precision",  # rollouts and updates in fp32
                "grad_accum",
                "scheduler",
                "warmup_ratio",
                "early_stopping_patience",
                "group_by_length",
                "distributed",
                "fsdp",
                "deepspeed",
            }
        ),
    )
)


class PpoHooks(Protocol):
    """What PPO calls on a task (tasks/base.register_task checks a task has them)."""

    add_special_tokens: bool  # the prompts' tokenization: False where a chat template wrote them
    reward: Callable[[list[str], list[str]], torch.Tensor]  # (questions, answers) -> rewards

    def prompts(self, split: str) -> list[str]: ...

    def render(self, question: str) -> str: ...  # the policy's prompt for a question

    def validate(self, policy: nn.Module) -> dict: ...


register_trainer_hooks("ppo", PpoHooks)
