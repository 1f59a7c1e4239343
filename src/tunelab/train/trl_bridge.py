"""The "trl" trainer: TRL's trainers (reward model, DPO, KTO) behind a thin bridge. tunelab's
train section becomes TRL's arguments, TRL's logs become tunelab's metrics stream
(metrics.jsonl), and `--resume` continues from TRL's last complete checkpoint.

The task supplies `trl_trainer(model, arguments, callbacks)`: its TRL trainer, built from the
shared arguments plus its own (beta, max_length, ...)."""

import json
import math
import time
from pathlib import Path
from typing import Protocol

import torch
from torch import nn
from transformers import EarlyStoppingCallback, TrainerCallback

from tunelab.config import TrainConfig
from tunelab.errors import notice
from tunelab.runtime import mixed_precision
from tunelab.tasks.base import Task, register_trainer_hooks
from tunelab.train.guards import check_finite
from tunelab.train.hf_checkpoints import newest_intact_checkpoint
from tunelab.train.loop import FitState
from tunelab.train.metrics_log import MetricsLog
from tunelab.train.trainers import TrainerSpec, register_trainer


def trl_arguments(config: TrainConfig, run_dir: Path, steps_per_epoch: int) -> dict:
    """Arguments shared by TRL configs. Precision is train.precision's, not TRL's default of
    bf16, which runs ~40x slower on CPUs without native bf16 (measured on the CI machines). A
    checkpoint per epoch (the last two kept) is what --resume continues from; early stopping
    needs the best one loaded at the end."""
    total = steps_per_epoch * config.epochs
    precision = mixed_precision(config, bf16_weights=False)  # TRL casts fp32 weights per call
    stopping = config.early_stopping_patience is not None
    return {
        "output_dir": str(run_dir / "trl"),
        "num_train_epochs": config.epochs,
        "per_device_train_batch_size": config.batch_size,
        "per_device_eval_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.grad_accum,
        "learning_rate": config.lr,
        "weight_decay": config.weight_decay,
        "lr_scheduler_type": config.scheduler,
        "warmup_steps": math.ceil(total * config.warmup_ratio),
        "max_grad_norm": config.max_grad_norm or 0.0,
        "seed": config.seed,
        "logging_steps": config.log_every,
        "eval_strategy": "epoch",
        "save_strategy": "epoch",
        "save_total_limit": 2,
        "load_best_model_at_end": stopping,
        "metric_for_best_model": "eval_loss" if stopping else None,
        "report_to": "none",
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "use_cpu": not torch.cuda.is_available(),
        "disable_tqdm": False,
        "remove_unused_columns": False,
        # TRL turns activation checkpointing on by default (memory for ~20 % more compute);
        # tunelab's own loop does not checkpoint, and the CPU runs here are not memory-bound.
        "gradient_checkpointing": False,
    }


class MetricsStream(TrainerCallback):
    """TRL log lines -> metrics.jsonl events: `train` per logging step, `eval` per epoch."""

    def __init__(self, run_dir: Path, enabled: bool):
        self.run_dir = run_dir
        self.log = MetricsLog(run_dir / "metrics.jsonl", enabled=enabled)
        self.train_losses: list[float] = []
        self.started = time.perf_counter()
        self.seconds = 0.0
        self.tokens = 0  # TRL's running count of training tokens (its `num_tokens` log)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        epoch = math.ceil(state.epoch or 0)
        for key, what in (("loss", "training loss"), ("grad_norm", "gradient norm")):
            if isinstance(logs.get(key), float):
                where = f"epoch {epoch}, step {state.global_step}"
                check_finite(logs[key], what, where, args.learning_rate, self.run_dir)
        if "loss" in logs:
            self.train_losses.append(logs["loss"])
            self.tokens = logs.get("num_tokens", self.tokens)
            extra = {k: v for k, v in logs.items() if isinstance(v, int | float) and k != "loss"}
            self.log.write(
                {
                    "event": "train",
                    "epoch": epoch,
                    "step": state.global_step,
                    "loss": logs["loss"],
                    **extra,
                }
            )
        if "eval_loss" in logs:
            now = time.perf_counter()
            record = {
                "epoch": epoch,
                "train_loss": sum(self.train_losses) / max(len(self.train_losses), 1),
                "train_seconds": now - self.started,
                **{
                    f"val_{k[5:]}": v
                    for k, v in logs.items()
                    if k.startswith("eval_") and isinstance(v, int | float)
                },
            }
            self.seconds += now - self.started
            self.train_losses, self.started = [], now
            self.log.write({"event": "eval", "split": "val", **record})


class TimeLimit(TrainerCallback):
    """train.max_minutes: stop after the step that crosses the limit (then evaluate and save)."""

    def __init__(self, minutes: float | None):
        self.seconds = None if minutes is None else 60 * minutes
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.seconds is not None and time.perf_counter() - self.started > self.seconds:
            control.should_training_stop = True


def steps_per_epoch(rows: int, config: TrainConfig) -> int:
    return max(1, math.ceil(rows / (config.batch_size * config.grad_accum)))


def keep_trainable_in_fp32(model: nn.Module) -> None:
    """TRL's RewardTrainer turns a quantized model's adapter weights to bf16 (QLoRA's paper
    recipe, for bf16 compute); tunelab computes in fp32 (bf16 off), where bf16 weights fail the
    matmul and run ~40x slower on CPUs. The optimizer is built in train(), after this."""
    for param in model.parameters():
        if param.requires_grad and param.dtype == torch.bfloat16:
            param.data = param.data.float()


def fit_trl(task: Task, model: nn.Module) -> tuple[nn.Module, FitState]:
    run, config = task.run, task.config.train
    stream = MetricsStream(run.run_dir, enabled=run.is_main)
    checkpoint = newest_intact_checkpoint(run.run_dir / "trl", notice) if run.resume else None
    if checkpoint is not None:  # forget the log lines of the epoch that did not finish
        epoch = json.loads((checkpoint / "trainer_state.json").read_text())["epoch"]
        stream.log.truncate_after(math.floor(epoch + 1e-6))
    elif run.resume:  # killed before its first checkpoint: it starts again, so does its log
        stream.log.truncate_after(0)
    callbacks = [stream, TimeLimit(config.max_minutes)]
    if config.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(config.early_stopping_patience))
    arguments = trl_arguments(config, run.run_dir, steps_per_epoch(task.train_size(), config))
    trainer = task.trl_trainer(model, arguments, callbacks)
    keep_trainable_in_fp32(trainer.model)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    state = FitState(
        epoch=math.ceil(trainer.state.epoch or 0),
        step=trainer.state.global_step,
        seconds=time.perf_counter() - started,
        tokens=int(stream.tokens),
    )
    return trainer.model, state


# TRL's trainers batch and checkpoint their own way: tunelab's micro-batches, frozen-block cache
# and best-epoch monitor (beyond the validation loss) are not theirs.
register_trainer(
    TrainerSpec(
        "trl",
        fit_trl,
        frozenset(
            {
                "micro_batch_tokens",
                "max_tokens",  # compare's token budget counts the loop's batches
                "cache_frozen",
                "cache_max_gb",
                "group_by_length",
                "distributed",
                "fsdp",
                "deepspeed",
            }
        ),
    )
)


class TrlHooks(Protocol):
    """What the bridge calls on a task (tasks/base.register_task checks a task has them)."""

    def trl_trainer(self, model: nn.Module, arguments: dict, callbacks: list): ...  # TRL's

    def train_size(self) -> int: ...  # training rows a pass (the step count's basis)


register_trainer_hooks("trl", TrlHooks)
