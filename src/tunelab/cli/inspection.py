"""tunelab commands that look before training: data preview (rows as the model sees them),
doctor (the pre-flight report) and config schema. cli/__init__.py registers them."""

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

out = Console()


def data_preview(
    config: Annotated[Path, typer.Argument(help="YAML config of an sft or pretrain run.")],
    overrides: Annotated[list[str] | None, typer.Argument(help="Dotted overrides.")] = None,
    rows: Annotated[int, typer.Option(help="Training rows shown.")] = 2,
):
    """Print training rows as the model sees them; the trained tokens are inside [[ ]]."""
    from tunelab.pipeline import load_config, open_task

    task = open_task(load_config(config, overrides or []))
    summary = task.prepare()
    for line in task.preview(rows):
        out.print(line, markup=False)
    print(json.dumps(summary))


def doctor(
    config: Annotated[Path, typer.Argument(help="YAML config to check before training.")],
    overrides: Annotated[list[str] | None, typer.Argument(help="Dotted overrides.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object instead.")] = False,
):
    """Pre-flight check of a config's data, template and memory; exit 1 on a fatal finding."""
    from tunelab.pipeline import diagnose, load_config

    findings, _ = diagnose(load_config(config, overrides or []))
    if as_json:
        print(json.dumps([finding.__dict__ for finding in findings]))
    else:
        style = {"fatal": "[red]FATAL[/red]", "warn": "[yellow]warn [/yellow]", "ok": "ok   "}
        for finding in findings:
            out.print(f"{style[finding.severity]} {finding.check}: ", end="")
            out.print(finding.message, markup=False, highlight=False, soft_wrap=True)
    if any(finding.severity == "fatal" for finding in findings):
        raise typer.Exit(1)


def config_schema():
    """Print the JSON schema of a run config."""
    from tunelab import pipeline  # noqa: F401 - registers every task and method
    from tunelab.config import json_schema

    print(json_schema())
