"""When the loop stops early: train.max_minutes, train.max_tokens (compare's equal budgets) and a
search trial's pruner. Each stop still evaluates and saves, as a finished run does."""

import time
from pathlib import Path

import torch
from accelerate import Accelerator

from tunelab.config import TrainConfig
from tunelab.train.trial import report_epoch


class Budget:
    def __init__(self, config: TrainConfig, accelerator: Accelerator, run_dir: Path):
        self.config, self.acc, self.run_dir = config, accelerator, run_dir
        self.started = time.perf_counter()
        self.tokens_spent = False

    def out_of_time(self) -> bool:
        limit = self.config.max_minutes
        return limit is not None and time.perf_counter() - self.started > 60 * limit

    def over_tokens(self, before: int, this_epoch: torch.Tensor, batch: dict) -> bool:
        """train.max_tokens: True when the next batch would pass the budget (never trained
        beyond it); every process decides on the same summed count."""
        limit = self.config.max_tokens
        if limit is None:
            return False
        spent = this_epoch + batch["attention_mask"].sum().float()
        if self.acc.num_processes > 1:
            spent = self.acc.reduce(spent.to(self.acc.device), reduction="sum").cpu()
        self.tokens_spent = before + spent.item() > limit
        return self.tokens_spent

    def stop_after_epoch(self, record: dict, epoch: int) -> bool:
        """Out of time or tokens, or a search trial (one process) its pruner stopped; the last
        epoch is never pruned (the trial has finished: its score counts)."""
        if self.out_of_time() or self.tokens_spent:
            return True
        if epoch >= self.config.epochs or self.acc.num_processes > 1:
            return False
        return report_epoch(record, epoch, self.run_dir)
