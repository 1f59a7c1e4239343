"""The entry of a `tunelab ui` job: `tunelab ARGS` with Ctrl-C restored. A process started
from a shell that ignores SIGINT (any background `&` job, CI's included) inherits that, and the
UI's Stop (Ctrl-C to the job, so that tunelab keeps its checkpoint and says so) would not reach
it. Run as `python -m tunelab.cli.job ARGS`."""

import signal

from tunelab.cli import main

if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    main()
