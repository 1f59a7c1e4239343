"""Files written whole or not at all: a kill (or a second process writing the same file) never
leaves half a file for the next reader; and folders one process writes at a time. The standard
library has the steps (rename, flock), not the rules."""

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tunelab.errors import TunelabError


def write_whole(path: str | Path, text: str) -> None:
    """`text` into `path` through a file beside it (named for this process, so that two writers
    never share one), renamed into place: readers see the old file or the new one."""
    path = Path(path)
    staging = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        staging.write_text(text)
        staging.replace(path)
    finally:
        staging.unlink(missing_ok=True)


@contextmanager
def held_alone(folder: Path, what: str) -> Iterator[None]:
    """An exclusive lock on `folder` for as long as the block runs, held on a hidden file beside
    it (one inside would go with `--overwrite`): a second process that asks for the same folder
    is refused in one line instead of writing into it too. The OS drops the lock when the holder
    dies, even by kill -9."""
    where = Path(folder).resolve()  # `.` or a link: the folder itself, locked beside it
    lock_path = where.parent / f".{where.name}.lock"
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = lock_path.open("a+")
    except OSError as exc:
        raise TunelabError(f"{folder}: cannot use this folder ({exc.strerror})") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise TunelabError(
                f"{folder}: {what} by {holder} right now; wait for it to end, or stop it"
            ) from None
        handle.truncate(0)
        handle.write(f"process {os.getpid()}")
        handle.flush()
        yield
