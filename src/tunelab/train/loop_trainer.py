"""The "loop" trainer: tunelab's own loop (train/loop.py) for classify, sft and pretrain.

The task supplies `loop_rows()` -> (train, val) encoded rows, `validate(model, rows)`, and the
loss pieces the loop reads (compute_loss, loss_units, collate). When the method leaves the
embeddings and lower blocks frozen (head, freeze) and the task allows it, those blocks run
once and the top trains from their cached output."""

import time
from collections.abc import Callable
from typing import Protocol

from torch import nn
from transformers import DataCollatorWithPadding

from tunelab.tasks.base import Task, register_trainer_hooks
from tunelab.train.frozen_cache import cacheable, estimated_bytes, frozen_prefix_cached
from tunelab.train.loop import FitState, Trainer
from tunelab.train.trainers import TrainerSpec, register_trainer


class LoopHooks(Protocol):
    """What the loop calls on a task (tasks/base.register_task checks a task has them)."""

    collate: Callable[[list[dict]], dict]  # rows -> a padded batch
    caches_frozen_blocks: bool

    def loop_rows(self) -> tuple[list[dict], list[dict]]: ...  # encoded train and val rows

    def validate(self, model: nn.Module, rows: list[dict]) -> dict: ...

    def compute_loss(self, model: nn.Module, batch: dict) -> tuple: ...  # (loss, correct)

    def loss_units(self, batch: dict) -> int: ...  # what the loss is averaged over


def fit_rows(task: Task, model: nn.Module, train: list, val: list, cached: bool) -> FitState:
    run, config = task.run, task.config.train
    if cached and config.group_by_length is None:  # unset means on (the loop's default)...
        config = config.model_copy(update={"group_by_length": False})  # ...but random when cached

    def validate(model: nn.Module) -> dict:
        return task.validate(model, val)

    trainer = Trainer(model, task, task.tokenizer, config, run.accelerator, run.run_dir, validate)
    return trainer.fit(train, run.resume)


def fit_loop(task: Task, model: nn.Module) -> tuple[nn.Module, FitState]:
    train, val = task.loop_rows()
    config = task.config.train
    sharded = config.distributed != "ddp"  # the frozen blocks are sharded too: no cache
    if sharded or not (task.caches_frozen_blocks and config.cache_frozen and cacheable(model)):
        return model, fit_rows(task, model, train, val, cached=False)
    if estimated_bytes(train + val, model.config.hidden_size) > config.cache_max_gb * 2**30:
        print(f"the hidden-state cache would exceed train.cache_max_gb={config.cache_max_gb}")
        return model, fit_rows(task, model, train, val, cached=False)
    # Rows carry their place in the cache; the frozen blocks run once, here.
    train = [{**row, "cache_index": i} for i, row in enumerate(train)]
    val = [{**row, "cache_index": len(train) + i} for i, row in enumerate(val)]
    started = time.perf_counter()
    collate = DataCollatorWithPadding(task.tokenizer)
    with frozen_prefix_cached(model, train + val, collate, task.config.eval.batch_size):
        cache_seconds = time.perf_counter() - started
        state = fit_rows(task, model, train, val, cached=True)
    state.seconds += cache_seconds  # the one pass through the frozen blocks is training time
    state.cache_seconds = cache_seconds
    return model, state


register_trainer(TrainerSpec("loop", fit_loop, bf16_weights=True))
register_trainer_hooks("loop", LoopHooks)
