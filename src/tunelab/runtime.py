"""Where a run executes: the Accelerate object (devices, processes) built from the train section."""

import torch
from accelerate import Accelerator, PartialState
from accelerate.state import AcceleratorState
from accelerate.utils import DataLoaderConfiguration, DeepSpeedPlugin

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
    plugin = None
    if config.distributed == "deepspeed":
        settings = deepspeed_config(config, process_state().num_processes)
        plugin = DeepSpeedPlugin(hf_ds_config=settings)  # checked at start (check_settings)
    accelerator = Accelerator(
        cpu=not torch.cuda.is_available(),
        gradient_accumulation_steps=config.grad_accum,
        mixed_precision=mixed_precision(config),
        dataloader_config=DataLoaderConfiguration(split_batches=True),
        deepspeed_plugin=plugin,
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


def deepspeed_config(config: TrainConfig, processes: int) -> dict:
    """The DeepSpeed config that train.deepspeed stands for, for Accelerate's DeepSpeedPlugin:
    train.batch_size is the global batch, split over the processes as in every other mode."""
    settings = config.deepspeed
    zero: dict = {"stage": settings.zero_stage, "overlap_comm": True, "contiguous_gradients": True}
    if settings.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if settings.offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    if settings.zero_stage == 3:  # a saved model whole, like a one-process run's
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    precision = mixed_precision(config)
    return {
        "train_micro_batch_size_per_gpu": max(1, config.batch_size // processes),
        "gradient_accumulation_steps": config.grad_accum,
        "gradient_clipping": config.max_grad_norm or 0.0,
        "zero_optimization": zero,
        "bf16": {"enabled": precision == "bf16"},
        "fp16": {"enabled": precision == "fp16"},
        "steps_per_print": 2**31 - 1,  # tunelab's progress bar and metrics.jsonl report instead
    }


def validate_deepspeed(settings: dict) -> dict:
    """DeepSpeed's own validation of a config (its pydantic models), as a one-line error."""
    try:
        from deepspeed.runtime.config import DeepSpeedConfig
    except ImportError:
        raise TunelabError(
            "train.distributed=deepspeed needs DeepSpeed (make setup installs it)"
        ) from None
    try:
        DeepSpeedConfig(dict(settings))
    except (ValueError, AssertionError) as exc:
        reason = " ".join(str(exc).split())
        raise TunelabError(f"train.deepspeed: DeepSpeed refuses the config ({reason})") from None
    return settings


def check_deepspeed(config: TrainConfig, settings: dict) -> dict:
    """What a DeepSpeed run needs here, checked when the run starts: CUDA GPUs (DeepSpeed's CPU
    backend needs Intel's oneCCL), and ZeRO stage 2: stage 3 partitions the weights, which
    tunelab's checkpoints and artefacts do not gather yet (train.distributed=fsdp shards them)."""
    if not torch.cuda.is_available():
        raise TunelabError("train.distributed=deepspeed runs on CUDA GPUs; on CPU use fsdp")
    if config.deepspeed.zero_stage == 3:
        raise TunelabError(
            "train.deepspeed.zero_stage=3: runs are not built yet (the config is generated and "
            "validated); use zero_stage=2, or train.distributed=fsdp to shard the weights"
        )
    return validate_deepspeed(settings)
