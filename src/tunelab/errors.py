"""User-facing errors: the CLI prints them as one line and exits with code 2."""

import sys


class TunelabError(Exception):
    """A problem the user can fix (bad input, bad config); never shown with a traceback."""


class DataError(TunelabError):
    """Bad data, located by file, row and field."""

    def __init__(self, file: str, problem: str, row: int | None = None, field: str | None = None):
        self.file, self.row, self.field = str(file), row, field  # where the UI shows it
        where = [str(file)]
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{', '.join(where)}: {problem}")


def notice(message: str) -> None:
    """One line on stderr about something the run did on its own (a checkpoint fallback)."""
    print(f"note: {message}", file=sys.stderr, flush=True)
