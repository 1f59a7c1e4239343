"""Progress that shows wherever the output goes. On a terminal: rich's live bars. Written to a
file or a pipe (`nohup tunelab train ... > log`, CI, the UI's job logs) rich draws a live
display only when it stops, and a transient one never: an hour of benchmark scoring showed no
line at all. There, a plain line per bar every LINE_EVERY_S seconds and at its end (rich has no
such mode; this subclass adds it)."""

import time
from collections.abc import Iterable, Iterator

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

LINE_EVERY_S = 30.0


def plain_line(description: str, completed: float, total: float | None, seconds: float, fields):
    """`epoch 1/3: 40/125 (32%), 1m05s, loss 1.2345, tps 812` (the bar's figures as text)."""
    done = f"{completed:.0f}/{total:.0f} ({100 * completed / total:.0f}%)" if total else ""
    minutes, rest = divmod(int(seconds), 60)
    parts = [done, f"{minutes}m{rest:02d}s"]
    parts += [f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items()]
    return f"{description}: " + ", ".join(p for p in parts if p)


class LineProgress(Progress):
    """rich's Progress, plus plain lines when the console is not a terminal."""

    def __init__(self, *columns, disable: bool = False, transient: bool = False, **options):
        super().__init__(*columns, disable=disable, transient=transient, **options)
        self.lines = not disable and not self.console.is_terminal
        # a transient bar (an evaluation's) leaves no line unless it ran LINE_EVERY_S: a log keeps
        # long work, not every short scoring pass; a training bar's last line stays, as on a
        # terminal
        self.keeps_short = not transient
        if self.lines:  # no live display: it would print its last frame, or a blank line
            self.disable = True
        self.printed_at: dict[TaskID, float] = {}
        self.ended: set[TaskID] = set()

    def update(self, task_id: TaskID, **changes) -> None:
        super().update(task_id, **changes)
        self.report(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self.report(task_id)

    def report(self, task_id: TaskID) -> None:
        if not self.lines or task_id in self.ended:
            return
        task = self._tasks[task_id]
        now = time.monotonic()
        due = now - self.printed_at.get(task_id, task.start_time or now) >= LINE_EVERY_S
        last = task.finished and (self.keeps_short or task_id in self.printed_at)
        if not (due or last):
            return
        if task.finished:
            self.ended.add(task_id)  # its last line is out
        self.printed_at[task_id] = now
        line = plain_line(
            task.description, task.completed, task.total, task.elapsed or 0.0, task.fields
        )
        self.console.file.write(line + "\n")
        self.console.file.flush()


def training_progress(enabled: bool) -> LineProgress:
    """A bar with the loss and throughput, shown by the main process only."""
    return LineProgress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  {task.fields[tps]:,.0f} tok/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
    )


def track(items: Iterable, description: str) -> Iterator:
    """rich's `track` (a transient bar), with the plain lines off a terminal (advanced here, not
    by rich's refresh thread: it runs only beside a live display). `items` has a length."""
    columns = (*Progress.get_default_columns(), MofNCompleteColumn())
    with LineProgress(*columns, transient=True) as progress:
        task = progress.add_task(description, total=len(items))
        for item in items:
            yield item
            progress.advance(task)
