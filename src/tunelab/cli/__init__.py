"""tunelab command line: train, eval, predict, generate, chat, serve, compare, export,
quantize, report, bench, ui, doctor, data preview, config schema. The commands live beside this
file, one module a family; this one assembles them into the `tunelab` app."""

import functools
import os
import sys

import typer
from rich.console import Console

from tunelab.cli import bench, commands, inspection, ship, ui
from tunelab.errors import TunelabError

app = typer.Typer(
    help="Fine-tune a pretrained language model and compare methods.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the configuration format.", no_args_is_help=True)
app.add_typer(config_app, name="config")
data_app = typer.Typer(help="Look at the data as the model will see it.", no_args_is_help=True)
app.add_typer(data_app, name="data")
err = Console(stderr=True)


def one_line_errors(command):
    """A user error is one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except TunelabError as exc:
            if int(os.environ.get("RANK", "0")) == 0:  # once, not once per torchrun worker
                err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


# train, eval, predict, compare, quantize, report, generate, chat: commands.py
app.command()(one_line_errors(commands.train))
app.command("eval")(one_line_errors(commands.eval_command))
app.command()(one_line_errors(commands.predict))
app.command("compare")(one_line_errors(commands.compare_command))
app.command()(one_line_errors(commands.quantize))
app.command()(one_line_errors(commands.report))
app.command("generate")(one_line_errors(commands.generate_command))
app.command()(one_line_errors(commands.chat))


# export and serve live in ship.py (the commands that take a run out of tunelab)
app.command()(one_line_errors(ship.export))
app.command()(one_line_errors(ship.serve))
app.command()(one_line_errors(ui.ui))
app.command("bench")(one_line_errors(bench.bench_command))


# data preview, doctor and config schema live in inspection.py (looking before training)
data_app.command("preview")(one_line_errors(inspection.data_preview))
app.command()(one_line_errors(inspection.doctor))
config_app.command("schema")(inspection.config_schema)


def main() -> None:
    """The `tunelab` command: click's usage errors (a bad option value) become one line too."""
    # typer 0.29 vendors click; its exceptions live here (typer exports only BadParameter)
    from typer._click.exceptions import ClickException
    from typer.exceptions import Abort

    try:
        code = app(standalone_mode=False)
    except ClickException as exc:
        if exc.format_message():  # empty: `tunelab` alone, whose help was just shown
            err.print(f"[red]error:[/red] {exc.format_message()}", highlight=False, soft_wrap=True)
        code = exc.exit_code
    except Abort:  # Ctrl-C outside training
        err.print("interrupted")
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
