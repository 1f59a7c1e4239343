"""Where a run executes: the Accelerate object (devices, processes) built from the train section."""

import os
from dataclasses import dataclass

import torch
from accelerate import Accelerator, PartialState
from accelerate.state import AcceleratorState
from accelerate.utils import DataLoaderConfiguration, DeepSpeedPlugin

from tunelab.config import TrainConfig
from tunelab.errors import TunelabError
from tunelab.hardware import BF16_FLAGS, CpuInfo, this_cpu
from tunelab.precision_probe import bf16_step_speedup

ACCELERATE_NAMES = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}  # train.precision -> Accelerate


@dataclass(frozen=True)
class PrecisionChoice:
    used: str  # "fp32", "bf16" or "fp16"
    reason: str

    @property
    def accelerate(self) -> str:
        """Accelerate's mixed_precision name ("no" for fp32)."""
        return ACCELERATE_NAMES[self.used]

    def record(self) -> dict:
        return {"used": self.used, "reason": self.reason}


PIN_AUTO = "TUNELAB_AUTO_PRECISION"  # fp32 or bf16: what auto means on a CPU, without the probe

# bf16 must beat fp32 by this much on the probe to be chosen: the probe is a part of the step, and
# a few percent on it is within the 2-core VMs' noise (docs/performance.md).
BF16_MIN_SPEEDUP = 1.15


def auto_precision(
    cpu: CpuInfo, cuda_bf16: bool, measured_speedup: float | None
) -> PrecisionChoice:
    """train.precision=auto: bf16 on a GPU that has it; on a CPU only where bf16 is native
    (AVX512-BF16 or AMX-BF16) *and* a bf16 training step measured faster than fp32 here.
    Emulated bf16 (AVX2 only) runs far slower than fp32 (~40x on the AVX2 EPYC machines)."""
    if cuda_bf16:
        return PrecisionChoice("bf16", "auto: bf16 on a GPU that supports it")
    if not cpu.native_bf16:
        return PrecisionChoice(
            "fp32", f"auto: fp32, the CPU ({cpu.model}) has no native bf16 (avx512_bf16, amx_bf16)"
        )
    native = "+".join(flag for flag in BF16_FLAGS if flag in cpu.flags)
    if measured_speedup is None:
        return PrecisionChoice("fp32", f"auto: fp32, native bf16 ({native}) but not measured")
    name = "bf16" if measured_speedup >= BF16_MIN_SPEEDUP else "fp32"
    return PrecisionChoice(
        name,
        f"auto: {name}, native bf16 ({native}); a bf16 LoRA step ran {measured_speedup:.2f}x "
        f"fp32 here (bf16 needs {BF16_MIN_SPEEDUP:.2f}x)",
    )


def resolve_precision(config: TrainConfig, bf16_weights: bool = True) -> PrecisionChoice:
    """train.precision as Accelerate runs it, and why. bf16_weights: the trainer holds frozen
    weights in bf16 during a bf16 epoch (tunelab's loop does; TRL's trainers and PPO do not),
    which is what the probe then measures."""
    if config.precision == "fp16" and not torch.cuda.is_available():
        raise TunelabError(
            "train.precision=fp16 needs a CUDA GPU, and this machine has none (fp16 autocast on a "
            "CPU is slower than fp32 and not what a GPU run would do); use auto, bf16 or fp32"
        )
    if config.precision != "auto":
        return PrecisionChoice(config.precision, f"train.precision={config.precision}")
    if torch.cuda.is_available():
        return auto_precision(this_cpu(), torch.cuda.is_bf16_supported(), None)
    pinned = os.environ.get(PIN_AUTO)
    if pinned in ("fp32", "bf16"):  # the test suite pins fp32: its figures must not hang on the CPU
        return PrecisionChoice(pinned, f"auto: {pinned} ({PIN_AUTO})")
    cpu = this_cpu()
    speedup = bf16_step_speedup(bf16_weights) if cpu.native_bf16 else None
    return auto_precision(cpu, False, speedup)


def mixed_precision(config: TrainConfig, bf16_weights: bool = True) -> str:
    """Accelerate's name for train.precision (auto resolved by resolve_precision)."""
    return resolve_precision(config, bf16_weights).accelerate


def make_accelerator(config: TrainConfig, bf16_weights: bool = True) -> Accelerator:
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
        mixed_precision=mixed_precision(config, bf16_weights),
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
