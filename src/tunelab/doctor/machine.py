"""The machine the run would train on, and the precision it would train in: a bf16 run on a CPU
without native bf16 is emulated, many times slower than fp32."""

import torch

from tunelab.doctor.findings import Finding
from tunelab.hardware import describe_machine, this_cpu
from tunelab.train import TRAINERS


def machine_check(task) -> Finding:
    choice = TRAINERS.get(task.trainer).precision(task.config.train)
    message = f"{describe_machine()}; {choice.reason}"
    emulated = choice.accelerate == "bf16" and not torch.cuda.is_available()
    if emulated and not this_cpu().native_bf16:
        return Finding(
            "machine",
            "warn",
            f"{message}: this CPU has no native bf16, so bf16 is emulated and runs far slower "
            "than fp32 (train.precision=auto picks fp32 here)",
        )
    return Finding("machine", "ok", message)
