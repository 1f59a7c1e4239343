"""New run: check the form (config, then data, as `tunelab data preview` reads it), show the
first rows as the model will see them, and start `tunelab train` on the YAML it wrote."""

import html
import re

from tunelab.errors import DataError, TunelabError
from tunelab.pipeline import open_task
from tunelab.ui import jobs
from tunelab.ui.forms import FieldError, build_config, config_yaml, data_error_field, train_command
from tunelab.ui.workspace import Workspace

PREVIEW_ROWS = 3
# what the YAML and the command show while the name field is still empty: a newcomer is not met
# with an error under a field they have not reached (issue 36); starting a run still needs a name
NAME_PLACEHOLDER = "NAME"
# the setting an error names ("... is empty; change data.split"): the field it is shown by
NAMED_FIELD = re.compile(r"\b((?:data|train|task|method|model|eval)\.[a-z_]+)")
MARK = re.compile(re.escape(html.escape("[[")) + "(.*?)" + re.escape(html.escape("]]")), re.S)


def marked_html(line: str) -> str:
    """A preview line with the trained spans ([[ ]]) as <mark>."""
    return MARK.sub(r"<mark>\1</mark>", html.escape(line))


def describe(workspace: Workspace, values: dict) -> dict:
    """The YAML and the command the form stands for (no data read): kept in sync as it changes."""
    if not str(values.get("name") or "").strip():
        values = {**values, "name": NAME_PLACEHOLDER}
    _, raw, source = build_config(workspace, values)
    return {"yaml": config_yaml(raw), "command": train_command(source)}


def check_run(workspace: Workspace, values: dict) -> dict:
    """The YAML, the command and the first training rows; a FieldError where the form is wrong."""
    config, raw, source = build_config(workspace, values)
    try:
        task = open_task(config)
        task.prepare()
        lines = [marked_html(text.plain) for text in task.preview(PREVIEW_ROWS)]
    except DataError as exc:
        raise FieldError(data_error_field(exc, config), str(exc)) from None
    except TunelabError as exc:
        match = NAMED_FIELD.search(str(exc))
        raise FieldError(match.group(1) if match else "", str(exc)) from None
    return {"yaml": config_yaml(raw), "command": train_command(source), "preview": lines}


def start_run(workspace: Workspace, values: dict) -> dict:
    """Check, refuse a name already used, write configs/NAME.yaml and start training."""
    name = str(values.get("name", ""))
    checked = check_run(workspace, values)
    run_dir = workspace.run_dir(name)
    if run_dir.exists() and any(run_dir.iterdir()) or workspace.config_file(name).exists():
        raise FieldError("name", f"name: a run called '{name}' exists; choose another name")
    config_file = workspace.config_file(name)
    config_file.write_text(checked["yaml"])
    jobs.launch(workspace, "train", name, ["train", str(config_file)])
    return checked


def resume_run(workspace: Workspace, name: str) -> None:
    """`tunelab train configs/NAME.yaml --resume`: on from the last complete checkpoint."""
    config_file = workspace.config_file(name)
    if not config_file.is_file():
        raise TunelabError(f"{name}: no config file to resume from")
    jobs.launch(workspace, "train", name, ["train", str(config_file), "--resume"])
