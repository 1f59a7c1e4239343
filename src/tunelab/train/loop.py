"""One training loop for every task: AdamW, schedule, accumulation, clipping, per-epoch eval,
early stopping, atomic checkpoints, resume, best model restored. Runs on Accelerate, so the same
code runs in one process or N data-parallel ones (torchrun), or sharded (train.distributed:
fsdp, train/sharding.py)."""

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from transformers import get_scheduler

from tunelab.config import TrainConfig
from tunelab.data.encode import make_loader
from tunelab.data.micro_batches import micro_batches, slice_count
from tunelab.errors import TunelabError, notice
from tunelab.models.trainable import trainable_state
from tunelab.progress import training_progress
from tunelab.runtime import mixed_precision
from tunelab.train.bf16_weights import bf16_copies_wanted, frozen_linears_in_bf16
from tunelab.train.budget import Budget
from tunelab.train.checkpoint import load_checkpoint, restore_newest, save_checkpoint
from tunelab.train.epoch_totals import batch_totals, epoch_record
from tunelab.train.guards import check_finite
from tunelab.train.metrics_log import MetricsLog
from tunelab.train.optimizer import build_optimizer
from tunelab.train.sharding import (
    full_value,
    gathered_for_eval,
    load_optimizer_state,
    most_over_processes,
    optimizer_state,
    release,
    shard_model,
)


@dataclass
class FitState:
    """What resume needs besides the weights and the optimizer."""

    epoch: int = 0  # last finished epoch
    step: int = 0  # optimizer steps taken
    history: list[dict] = field(default_factory=list)
    best_value: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    seconds: float = 0.0
    tokens: int = 0
    cache_seconds: float = 0.0  # head/freeze: the one pass through the frozen blocks


def is_better(value: float, best: float | None, monitor: str) -> bool:
    if best is None:
        return True
    return value < best if monitor == "val_loss" else value > best


class Trainer:
    """Holds the pieces of one fit; `fit` below is the loop (nanoGPT-sized on purpose).

    `task` supplies compute_loss(model, batch) -> (mean loss, rows right or None),
    loss_units(batch) -> what that mean is over, and collate (None: pad to the longest)."""

    def __init__(
        self,
        model,
        task,
        tokenizer,
        config: TrainConfig,
        accelerator: Accelerator,
        run_dir: Path,
        validate: Callable[[torch.nn.Module], dict],
    ):
        self.task, self.tokenizer, self.config, self.acc = task, tokenizer, config, accelerator
        # validate(model) -> the task's validation metrics
        self.run_dir, self.validate, self.collate = run_dir, validate, task.collate
        self.checkpoints = run_dir / "checkpoints"
        self.log = MetricsLog(run_dir / "metrics.jsonl", enabled=accelerator.is_main_process)
        self.sharded = config.distributed == "fsdp"
        self.bf16_copies = bf16_copies_wanted(accelerator.mixed_precision, config.distributed)
        if self.sharded:  # FSDP2 on torch's own: Accelerate's plugin is GPU-only (sharding.py)
            model = shard_model(model, config, mixed_precision(config))
        self.raw_model = model
        self.optimizer = build_optimizer(model, config)
        if self.sharded:
            self.model, self.optimizer = model, accelerator.prepare(self.optimizer)
        else:
            self.model, self.optimizer = accelerator.prepare(model, self.optimizer)

    def optimizer_state(self) -> dict:
        if self.sharded:  # by parameter name: resumable with another process count
            return optimizer_state(self.raw_model, self.optimizer.optimizer)
        return self.optimizer.state_dict()

    def load_optimizer(self, state: dict) -> None:
        if self.sharded:
            load_optimizer_state(self.raw_model, self.optimizer.optimizer, state)
        else:
            self.optimizer.load_state_dict(state)

    def make_scheduler(self, steps_per_epoch: int):
        total = steps_per_epoch * self.config.epochs
        return get_scheduler(
            self.config.scheduler,
            self.optimizer,
            num_warmup_steps=math.ceil(total * self.config.warmup_ratio),
            num_training_steps=total,
        )

    def resume(self, scheduler) -> FitState:
        last = restore_newest(self.checkpoints / "last", say=notice)
        if last is not None and self.config.distributed == "deepspeed":
            raise TunelabError(  # its optimizer state is a file per process: not saved here
                "--resume: resuming a train.distributed=deepspeed run is not built; "
                "--overwrite trains it again"
            )
        if last is None:
            self.log.truncate_after(0)
            return FitState()
        saved = load_checkpoint(last, self.raw_model)
        self.load_optimizer(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"])
        state = FitState(**saved["fit"])
        self.log.truncate_after(state.epoch)
        return state

    def checkpoint(self, state: FitState, scheduler, improved: bool) -> None:
        if not (self.sharded or self.acc.is_main_process):
            self.acc.wait_for_everyone()  # a data-parallel copy: the main process saves
            return
        weights, optimizer = trainable_state(self.raw_model), self.optimizer_state()  # all gather
        if self.acc.is_main_process:
            progress = {"epoch": state.epoch, "step": state.step}
            if improved:
                save_checkpoint(self.checkpoints / "best", weights, progress=progress)
            extra = {
                "optimizer": optimizer,
                "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state(),
                "fit": state.__dict__,
            }
            save_checkpoint(self.checkpoints / "last", weights, extra, progress)
        self.acc.wait_for_everyone()

    def train_epoch(self, epoch: int, state: FitState, scheduler, progress) -> dict:
        loader = self.epoch_loader(epoch)
        bar = progress.add_task(
            f"epoch {epoch}/{self.config.epochs}", total=len(loader), loss=0.0, tps=0.0
        )
        totals = torch.zeros(4)  # loss sum, correct, rows, real tokens
        start = time.perf_counter()
        self.model.train()
        for batch in loader:
            if self.budget.out_of_time() or self.budget.over_tokens(state.tokens, totals[3], batch):
                break
            loss, correct = self.optimizer_step(
                batch, scheduler, f"epoch {epoch}, step {state.step + 1}"
            )
            totals += batch_totals(batch, loss, correct)
            tps = totals[3].item() * self.acc.num_processes / (time.perf_counter() - start)
            progress.update(bar, advance=1, loss=loss.item(), tps=tps)
            if self.acc.sync_gradients:
                state.step += 1
                if state.step % self.config.log_every == 0:
                    self.log.write(
                        {
                            "event": "train",
                            "epoch": epoch,
                            "step": state.step,
                            "loss": loss.item(),
                            "lr": scheduler.get_last_lr()[0],
                            "tokens_per_s": tps,
                        }
                    )
        return epoch_record(self.acc.reduce(totals, reduction="sum"), time.perf_counter() - start)

    def epoch_loader(self, epoch: int):
        """The training rows in this epoch's order (the seed moves with the epoch)."""
        return self.acc.prepare_data_loader(
            make_loader(
                self.examples,
                self.tokenizer,
                self.config.batch_size,
                shuffle=True,
                group_by_length=self.config.group_by_length is not False,  # None: on
                seed=self.config.seed + epoch,
                collate=self.collate,
            )
        )

    def optimizer_step(
        self, batch: dict, scheduler, where: str
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One batch's loss and gradients; the weights move when Accelerate says the
        accumulated gradients are in (a non-finite loss or gradient norm stops the run)."""
        with self.acc.accumulate(self.model):
            loss, correct = self.loss_and_backward(batch)
            check_finite(loss.item(), "training loss", where, self.config.lr, self.run_dir)
            if self.acc.sync_gradients and self.config.max_grad_norm:
                norm = self.acc.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
                check_finite(
                    float(full_value(norm)) if norm is not None else 0.0,  # DeepSpeed: None
                    "gradient norm",
                    where,
                    self.config.lr,
                    self.run_dir,
                )
            self.optimizer.step()
            scheduler.step()
            self.optimizer.zero_grad()
        return loss, correct

    def loss_and_backward(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The batch's mean loss and its gradients, micro-batch by micro-batch when the batch is
        over train.micro_batch_tokens: each one's loss weighted by its share of the loss units."""
        budget, slices = self.config.micro_batch_tokens, None
        if self.sharded:  # every process must run as many passes: each gathers with the others
            slices = most_over_processes(slice_count(batch, budget))
        parts = micro_batches(batch, budget, slices)
        if len(parts) == 1:
            loss, correct = self.task.compute_loss(self.model, batch)
            self.acc.backward(loss)
            return loss, correct
        units = [self.task.loss_units(part) for part in parts]
        total = sum(units)
        weights = [u / total if total else 1 / len(parts) for u in units]
        losses, corrects = [], []
        for i, (part, weight) in enumerate(zip(parts, weights, strict=True)):
            # data-parallel processes exchange gradients once, after the last micro-batch
            last = i == len(parts) - 1
            with nullcontext() if last else self.acc.no_sync(self.model):
                loss, correct = self.task.compute_loss(self.model, part)
                self.acc.backward(loss * weight)
            losses.append(loss.detach() * weight)
            corrects.append(correct)
        correct = None if corrects[0] is None else torch.stack(corrects).sum()
        return torch.stack(losses).sum(), correct

    def fit(self, train: list[dict], resume: bool) -> FitState:
        self.examples, self.budget = train, Budget(self.config, self.acc, self.run_dir)
        batches = math.ceil(len(train) / self.config.batch_size)
        if batches < self.config.grad_accum:
            raise TunelabError(
                f"train.grad_accum={self.config.grad_accum}: an epoch has {batches} batches of "
                f"train.batch_size={self.config.batch_size}, so no optimizer step would run; "
                "lower train.grad_accum or train.batch_size"
            )
        scheduler = self.make_scheduler(math.ceil(batches / self.config.grad_accum))
        state = self.resume(scheduler) if resume else FitState()
        with training_progress(self.acc.is_main_process) as progress:
            for epoch in range(state.epoch + 1, self.config.epochs + 1):
                with frozen_linears_in_bf16(self.raw_model, self.bf16_copies):
                    trained = self.train_epoch(epoch, state, scheduler, progress)
                record = {"epoch": epoch, **trained}
                with gathered_for_eval(self.model, self.sharded):
                    val_metrics = self.validate(self.model)
                record.update(
                    {f"val_{k}": v for k, v in val_metrics.items() if isinstance(v, float | int)}
                )
                state.epoch, state.seconds = epoch, state.seconds + record["train_seconds"]
                state.tokens += record["train_tokens"]
                improved = is_better(
                    record[self.config.monitor], state.best_value, self.config.monitor
                )
                if improved:
                    state.best_value, state.best_epoch, state.bad_epochs = (
                        record[self.config.monitor],
                        epoch,
                        0,
                    )
                else:
                    state.bad_epochs += 1
                state.history.append(record)
                self.log.write({"event": "eval", "split": "val", **record})
                self.checkpoint(state, scheduler, improved)
                patience = self.config.early_stopping_patience
                patience_out = patience and state.bad_epochs >= patience
                if patience_out or self.budget.stop_after_epoch(record, epoch):
                    break
        best = restore_newest(self.checkpoints / "best", say=notice)
        if best is not None:
            load_checkpoint(best, self.raw_model)
        if self.sharded:
            release(self.raw_model)  # evaluation and the artefact see a plain model
        return state
