"""User-facing errors: the CLI prints them as one line and exits with code 2."""

import sys


class TunelabError(Exception):
    """A problem the user can fix (bad input, bad config); never shown with a traceback."""


class DataError(TunelabError):
    """Bad data, located by file, row and field."""

    def __init__(self, file: str, problem: str, row: int | None = None, field: str | None = None):
        self.file, self.row, self.field = str(file), row, field  # where the UI shows it
        self.problems = [self]  # a file's every bad row, when they were gathered (`tunelab doctor`)
        where = [str(file)]
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(f"{', '.join(where)}: {problem}")

    @classmethod
    def gathered(cls, problems: list["DataError"]) -> "DataError":
        """A file's bad rows as one error: the first in full, the others counted by row (all
        kept in `problems`, which `tunelab doctor` lists)."""
        first = problems[0]
        if len(problems) == 1:
            return first
        rows = ", ".join(str(p.row) for p in problems[1:6]) + (", ..." if len(problems) > 6 else "")
        error = cls(first.file, "", first.row, first.field)
        more = f"{len(problems) - 1} more bad row{'s' if len(problems) > 2 else ''}"
        error.args = (f"{first} ({more}: {rows}; tunelab doctor lists them)",)
        error.problems = problems
        return error


def notice(message: str) -> None:
    """One line on stderr about something the run did on its own (a checkpoint fallback)."""
    print(f"note: {message}", file=sys.stderr, flush=True)
