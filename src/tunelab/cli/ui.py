"""`tunelab ui`: the browser face of the same commands (tunelab/ui/). cli/__init__.py registers it."""

from pathlib import Path
from typing import Annotated

import typer

from tunelab.errors import TunelabError


def ui(
    workspace: Annotated[
        Path, typer.Option(help="Folder of the UI's configs, data, runs and jobs.")
    ] = Path("tunelab-workspace"),
    host: Annotated[str, typer.Option(help="127.0.0.1: this machine only.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 7860,
    auth: Annotated[
        str | None,
        typer.Option(
            envvar="TUNELAB_UI_AUTH", help="TOKEN or user:password; needed off localhost."
        ),
    ] = None,
):
    """Fine-tune from a browser: new runs, live curves, compare, playground, export."""
    import uvicorn

    from tunelab import pipeline  # noqa: F401 - registers every task and method for the form
    from tunelab.ui.app import build_app
    from tunelab.ui.auth import check_secret, is_loopback
    from tunelab.ui.workspace import Workspace

    if not is_loopback(host) and not auth:
        raise TunelabError(
            f"--host {host} reaches other machines; give --auth TOKEN or user:password"
        )
    if auth is not None:
        check_secret(auth)
    space = Workspace.open(workspace)
    print(f"tunelab ui: http://{host}:{port}/  (workspace {space.root})", flush=True)
    uvicorn.run(build_app(space, auth), host=host, port=port, log_level="warning")
