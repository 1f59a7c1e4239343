"""The training-step rate of tunelab's LoRA SFT (case (c)'s config and data), for trying one
optimisation at a time: tokens per second of the steps after the warm-up ones (forward, backward,
the loop's micro-batches), optionally with a torch.profiler table of the kernels.

Not a peer comparison (sft_lora.py is): this times tunelab alone, a step at a time, so a change
to one kernel is seen without the evaluation and loading around it. Run it several times per
variant: on the 2-core VM the same code moved between 140 and 192 tokens/s in one day.

    python benchmarks/step_rate.py                   # the rate, written to results/step_rate.json
    python benchmarks/step_rate.py --profile         # and the 40 costliest kernels over 12 steps
    python benchmarks/step_rate.py method.name=qlora # config overrides pass through
"""

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import RESULTS, matmul_peak_gflops  # noqa: E402

from tunelab.hardware import write_measurement  # noqa: E402

CONFIG = HERE.parent / "configs" / "rlhf_smollm2_sft.yaml"
PROFILED_STEPS = 12


class StepTimer:
    """Wraps the loop's loss_and_backward: times each step after `warmup`, profiles the first
    PROFILED_STEPS of those when asked."""

    def __init__(self, warmup: int, profiled: bool):
        self.warmup, self.profiled = warmup, profiled
        self.steps, self.seconds, self.tokens = 0, 0.0, 0
        self.profiler: profile | None = None
        self.table = ""

    def wrap(self, step):
        def timed(trainer, batch: dict):
            self.steps += 1
            counted = self.steps > self.warmup
            if counted and self.profiled and self.profiler is None:
                self.profiler = profile(activities=[ProfilerActivity.CPU])
                self.profiler.__enter__()
            start = time.perf_counter()
            result = step(trainer, batch)
            if counted:
                self.seconds += time.perf_counter() - start
                self.tokens += int(batch["attention_mask"].sum())
            if self.profiler is not None and self.steps == self.warmup + PROFILED_STEPS:
                self.profiler.__exit__(None, None, None)
                averages = self.profiler.key_averages()
                self.table = averages.table(sort_by="self_cpu_time_total", row_limit=40)
            return result

        return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overrides", nargs="*", help="config overrides, key=value")
    parser.add_argument("--warmup", type=int, default=6, help="steps not timed")
    parser.add_argument("--profile", action="store_true", help="print a kernel profile")
    args = parser.parse_args()

    from tunelab.pipeline import load_config, run
    from tunelab.train.loop import Trainer

    peak = matmul_peak_gflops()  # this VM's speed moves from day to day: a rate needs its peak
    timer = StepTimer(args.warmup, args.profile)
    Trainer.loss_and_backward = timer.wrap(Trainer.loss_and_backward)
    settings = ["train.epochs=1", "data.limit_train=160", "eval.generate_limit=1"]
    config = load_config(CONFIG, [*settings, "output.dir=runs/step_rate", *args.overrides])
    run(config, overwrite=True)
    if timer.table:
        print(timer.table)
    rate = timer.tokens / timer.seconds if timer.seconds else 0.0
    timed = timer.steps - args.warmup
    print(f"{timed} steps timed: {rate:.1f} tokens/s (fp32 matmul peak {peak:.0f} GFLOP/s)")
    report = {
        "overrides": args.overrides,
        "threads": torch.get_num_threads(),
        "timed_steps": timed,
        "tokens_per_s": rate,
        "matmul_peak_gflops": peak,
    }
    write_measurement(RESULTS / "step_rate.json", report)


if __name__ == "__main__":
    main()
