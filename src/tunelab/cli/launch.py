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

from tunelab.errors import TunelabError


def rendezvous_flags(nnodes: int, node_rank: int, master: str | None) -> list[str]:
    """torchrun's: one machine picks a free port itself; several meet at the master's
    HOST:PORT, which every node is given (node 0 listens there)."""
    if nnodes == 1:
        return ["--standalone"]
    if master is None or ":" not in master:
        raise TunelabError("--nnodes above 1 needs --master HOST:PORT (node 0's address)")
    if not 0 <= node_rank < nnodes:
        raise TunelabError(f"--node-rank must be 0 to {nnodes - 1} with --nnodes {nnodes}")
    host, port = master.rsplit(":", 1)
    return [
        f"--nnodes={nnodes}",
        f"--node_rank={node_rank}",
        f"--master_addr={host}",
        f"--master_port={port}",
    ]


def launch_workers(
    nproc: int, argv: list[str], nnodes: int = 1, node_rank: int = 0, master: str | None = None
) -> int:
    """Re-run this command in `nproc` data-parallel processes on this machine, one of `nnodes`
    machines (torchrun; gloo on CPU, NCCL on GPU)."""
    # the cores shared among this machine's processes, unless the user chose a thread count
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // nproc))
    env = dict(os.environ, OMP_NUM_THREADS=threads)
    command = [
        sys.executable,
        "-m",
        "tunelab.cli.launch",  # this module's main: torchrun, less its traceback
        *rendezvous_flags(nnodes, node_rank, master),
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
