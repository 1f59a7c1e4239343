"""Reading a file's rows without stopping at the first bad one: every bad row is reported."""

from collections.abc import Callable, Iterable
from typing import TypeVar

from tunelab.errors import DataError

T = TypeVar("T")
MOST_PROBLEMS = 50  # bad rows gathered before a file is read no further


def every_row(records: Iterable[tuple[int, dict]], convert: Callable[[int, dict], T]) -> list[T]:
    """Each parsed record converted; a bad row does not stop the reading: the file's bad rows
    (up to MOST_PROBLEMS) are raised together as one DataError. (A line that does not parse
    stopped the reading before: rows after it cannot be told apart.)"""
    converted, problems = [], []
    for number, record in records:
        try:
            converted.append(convert(number, record))
        except DataError as exc:
            problems.append(exc)
            if len(problems) == MOST_PROBLEMS:
                break
    if problems:
        raise DataError.gathered(problems)
    return converted
