"""The bridge to TRL's trainers (reward model, DPO): tunelab's train section becomes TRL's
arguments, and TRL's logs become tunelab's metrics stream (metrics.jsonl)."""

import math
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

from tunelab.config import TrainConfig
from tunelab.train.metrics_log import MetricsLog


def trl_arguments(config: TrainConfig, run_dir: Path, steps_per_epoch: int) -> dict:
    """Arguments shared by TRL configs. bf16 is off: TRL turns it on by default and it runs
    ~40x slower on CPUs without native bf16 (measured on the CI machines)."""
    total = steps_per_epoch * config.epochs
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
        "save_strategy": "no",
        "report_to": "none",
        "bf16": False,
        "fp16": False,
        "use_cpu": not torch.cuda.is_available(),
        "disable_tqdm": False,
        "remove_unused_columns": False,
    }


class MetricsStream(TrainerCallback):
    """TRL log lines -> metrics.jsonl events: `train` per logging step, `eval` per epoch."""

    def __init__(self, run_dir: Path, enabled: bool):
        self.log = MetricsLog(run_dir / "metrics.jsonl", enabled=enabled)
        self.train_losses: list[float] = []
        self.started = time.perf_counter()
        self.seconds = 0.0
        self.tokens = 0  # TRL's running count of training tokens (its `num_tokens` log)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        epoch = math.ceil(state.epoch or 0)
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
