"""Where a run executes: the Accelerate object (devices, processes) built from the train section."""

import torch
from accelerate import Accelerator, PartialState
from accelerate.state import AcceleratorState
from accelerate.utils import DataLoaderConfiguration

from tunelab.config import TrainConfig
from tunelab.errors import TunelabError


def mixed_precision(config: TrainConfig) -> str:
    """Accelerate's name for train.precision. auto is bf16 only on a CUDA GPU that has it:
    CPUs without native bf16 run it ~40x slower than fp32 (measured on the CI machines)."""
    if config.precision == "auto":
        gpu_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return "bf16" if gpu_bf16 else "no"
    return {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[config.precision]


def make_accelerator(config: TrainConfig) -> Accelerator:
    # split_batches: train.batch_size is the global batch, so N processes see the same batches
    # (split N ways) as one process does, and reach the same loss.
    # cpu=True must be explicit: without it Accelerate ignores a torchrun world on a CPU machine.
    # AcceleratorState is a per-process singleton that refuses a second mixed precision; one
    # process may train several runs (compare, the UI, tests), each with its own train.precision.
    # The process group (PartialState) is kept. Transformers' TrainingArguments resets it too.
    AcceleratorState._reset_state(reset_partial_state=False)
    accelerator = Accelerator(
        cpu=not torch.cuda.is_available(),
        gradient_accumulation_steps=config.grad_accum,
        mixed_precision=mixed_precision(config),
        dataloader_config=DataLoaderConfiguration(split_batches=True),
    )
    if config.batch_size % accelerator.num_processes:
        raise TunelabError(
            f"train.batch_size={config.batch_size} must divide by the "
            f"{accelerator.num_processes} processes"
        )
    return accelerator


def process_state() -> PartialState:
    """This process's place in the run (rank, count); like make_accelerator, it must say cpu
    explicitly, or a torchrun world on a CPU machine reads as one process."""
    return PartialState(cpu=not torch.cuda.is_available())
