"""`tunelab train --nproc N`: the command again in N data-parallel processes, through torchrun
without its own traceback, so a worker's one-line error (printed once, by rank 0) is the whole
message and the exit code is the worker's. torch.distributed.run.main wraps run() in @record,
which prints ChildFailedError's traceback and a failure table; run() itself only raises it."""

import logging
import os
import subprocess
import sys

from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import parse_args, run


def launch_workers(nproc: int, argv: list[str]) -> int:
    """Re-run this command in `nproc` data-parallel processes (torchrun; gloo on CPU, NCCL on
    GPU)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(max(1, (os.cpu_count() or 1) // nproc)))
    command = [
        sys.executable,
        "-m",
        "tunelab.launch",  # this module's main: torchrun, less its traceback
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "tunelab.cli",
        *argv,
    ]
    return subprocess.call(command, env=env)


def main() -> None:
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    try:
        run(parse_args(sys.argv[1:]))
    except ChildFailedError as exc:
        codes = [failure.exitcode for failure in exc.failures.values()]
        sys.exit(next((code for code in codes if code > 0), 1))


if __name__ == "__main__":
    main()
