"""torchrun without its own traceback: `tunelab train --nproc N` runs this launcher, so a
worker's one-line error (printed once, by rank 0) is the whole message and the exit code is the
worker's. torch.distributed.run.main wraps run() in @record, which prints ChildFailedError's
traceback and a failure table; run() itself only raises it."""

import logging
import sys

from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import parse_args, run


def main() -> None:
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    try:
        run(parse_args(sys.argv[1:]))
    except ChildFailedError as exc:
        codes = [failure.exitcode for failure in exc.failures.values()]
        sys.exit(next((code for code in codes if code > 0), 1))


if __name__ == "__main__":
    main()
