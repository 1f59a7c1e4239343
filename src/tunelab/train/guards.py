"""Training that fails says so: a loss or gradient norm that is not finite stops the run with one
line (where, what, the likely cause, the checkpoint to go back to) instead of training a NaN model
to the end and reporting success."""

import math
from pathlib import Path

from tunelab.errors import TunelabError
from tunelab.train.checkpoint import describe, is_complete


def last_good(run_dir: Path) -> str:
    for name in ("last", "best"):
        folder = run_dir / "checkpoints" / name
        if is_complete(folder):
            return f"the last good checkpoint is {describe(folder)}"
    return "no checkpoint was written yet"


def check_finite(value: float, what: str, where: str, lr: float, run_dir: Path) -> None:
    """Raise a one-line error when `value` (a loss, a gradient norm) is NaN or infinite."""
    if math.isfinite(value):
        return
    raise TunelabError(
        f"{where}: the {what} is {value}; the run stopped (likely cause: train.lr={lr:g} too "
        f"high, or rows with no trained token); {last_good(run_dir)}"
    )
