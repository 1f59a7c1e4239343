"""`tunelab bench`: standard benchmarks (lm-evaluation-harness over the shipped files) on a run,
base and tuned side by side, or on a model."""

import json
from pathlib import Path
from typing import Annotated

import typer

from tunelab.bench.report import plot, table_lines, time_line
from tunelab.bench.run import BenchSettings, bench, bench_path, gate_failures
from tunelab.bench.tasks import QUICK_LIMIT, pick
from tunelab.errors import TunelabError
from tunelab.files import write_whole
from tunelab.report import write_report
from tunelab.run_record import RUN_INFO


def bench_command(
    target: Annotated[str, typer.Argument(help="A finished run folder, or a model.")],
    tasks: Annotated[str, typer.Option(help="quick, all, or names: arc_easy,hellaswag")] = "quick",
    limit: Annotated[
        int | None, typer.Option(help="A seeded sample of N documents per benchmark.")
    ] = None,
    fewshot: Annotated[int | None, typer.Option(help="Examples shown before each one.")] = None,
    chat: Annotated[bool, typer.Option(help="Ask through the model's chat template.")] = False,
    batch_size: int = 16,
    gate: Annotated[
        float | None,
        typer.Option(help="Exit 1 when the run loses more than DROP points beyond noise."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Where bench.json goes (default: the run).")
    ] = None,
):
    """Standard benchmarks before and after tuning, each with its standard error."""
    if limit is not None and limit < 1:
        raise TunelabError("--limit: must be at least 1")
    is_run = (Path(target) / RUN_INFO).is_file()
    if gate is not None and not is_run:
        raise TunelabError("--gate compares a run with its base: give a run folder")
    names = pick(tasks)
    limit = QUICK_LIMIT if limit is None and tasks == "quick" else limit
    settings = BenchSettings(names, limit, fewshot, batch_size, chat)
    result = bench(target, settings)
    print("\n".join(table_lines(result)))
    print(time_line(result))
    print(f"lm-eval tasks: {result['task_folder']} (lm_eval --include_path)")
    folder = out or (Path(target) if is_run else None)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        write_whole(bench_path(folder), json.dumps(result, indent=1))
        plot(result, folder / "bench.png")
        print(f"wrote {bench_path(folder)} and {folder / 'bench.png'}")
    if is_run and out is None:
        write_report(target)  # the report (and the UI's run page) shows the benchmarks too
    failures = gate_failures(result["scores"], gate) if gate is not None else []
    for failure in failures:
        print(f"gate: {failure}")
    if failures:
        raise typer.Exit(1)
