"""The New-run form: its fields and help text come from the config schema (the same pydantic
models `tunelab train` validates with), and what the user typed becomes dotted overrides, then
the YAML file and the `tunelab train` command the UI runs. Errors carry the field they belong
to, in the CLI's own one-line words."""

import types
import typing
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from pydantic import ValidationError
from pydantic.fields import FieldInfo

from tunelab.config import (
    DataConfig,
    TrainConfig,
    apply_overrides,
    config_model,
)
from tunelab.config.errors import format_validation_error, validation_problem
from tunelab.config.settings import METHOD_SETTINGS, TASK_SETTINGS
from tunelab.errors import DataError, TunelabError
from tunelab.models.embedded import EMBEDDED
from tunelab.ui.workspace import BUILTIN_PREFIX, DATA_SUFFIXES, Workspace, check_name

# The settings shown for every run beside the task's and the method's own; the rest keep their
# defaults (the YAML editor of a later release can reach them).
MAIN_DATA = ("test_path", "text_field", "label_field", "split", "max_length")
MAIN_TRAIN = ("epochs", "batch_size", "lr", "seed")
PATH_FIELDS = ("data.path", "data.test_path", "data.val_path")
COLUMN_FIELDS = ("data.text_field", "data.label_field")


class FieldError(TunelabError):
    """A one-line error and the form field it belongs to ('' when it is about the whole run)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass
class FormField:
    key: str  # dotted config key, or "name"
    kind: str  # text, number, select, bool
    default: Any
    help: str
    choices: list[str] | None = None


def field_kind(annotation: Any) -> tuple[str, list[str] | None]:
    """How a setting is typed in: a choice list for Literal, a checkbox for bool, else text."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is Literal:
        return "select", [str(a) for a in typing.get_args(annotation)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return field_kind(args[0])
    if annotation is bool:
        return "bool", None
    if annotation in (int, float):
        return "number", None
    return "text", None


def schema_field(key: str, info: FieldInfo) -> FormField:
    kind, choices = field_kind(info.annotation)
    default = None if info.is_required() else info.get_default(call_default_factory=True)
    if isinstance(default, tuple):
        default = list(default)
    return FormField(key, kind, default, info.description or "", choices)


def section_fields(section: str, model, names: tuple[str, ...] | None = None) -> list[FormField]:
    fields = model.model_fields
    picked = names or tuple(n for n in fields if n != "name")
    return [schema_field(f"{section}.{name}", fields[name]) for name in picked if name in fields]


def registered_fields(section: str, registry, name: str) -> list[FormField]:
    """The own settings of a registered task or method (none for an unknown name)."""
    return section_fields(section, registry.get(name)) if name in registry else []


def form_fields(workspace: Workspace, task: str, method: str) -> list[FormField]:
    """Every field of the form for a task and method, in the order shown."""
    models = [*EMBEDDED, *workspace.model_folders()]
    data = [
        f"{BUILTIN_PREFIX}sms_spam",
        *workspace.files("data", DATA_SUFFIXES),
    ]
    head = [
        FormField("name", "text", "", "Run name: the folder under runs/ and the config file."),
        FormField("task.name", "select", task, "What to train.", TASK_SETTINGS.names()),
        FormField("method.name", "select", method, "How to train.", METHOD_SETTINGS.names()),
        FormField(
            "model.name", "text", models[0], "An embedded model or a folder under models/.", models
        ),
        FormField("data.path", "text", data[0], DataConfig.model_fields["path"].description, data),
    ]
    own = [*registered_fields("task", TASK_SETTINGS, task)]
    own += registered_fields("method", METHOD_SETTINGS, method)
    return [
        *head,
        *section_fields("data", DataConfig, MAIN_DATA),
        *own,
        *section_fields("train", TrainConfig, MAIN_TRAIN),
    ]


def overrides_of(workspace: Workspace, values: dict[str, Any]) -> list[str]:
    """The form's non-empty values as `key=value` overrides: only the fields the form shows for
    its task and method (a key it does not show skipped every check: issue 36), every path one
    of them carries confined to the workspace (a path outside it is that field's error), and
    the run folder put under runs/."""
    name = check_field("name", lambda: check_name(str(values.get("name", ""))))
    task, method = str(values.get("task.name", "")), str(values.get("method.name", ""))
    shown = {f.key for f in form_fields(workspace, task, method)}
    overrides = []
    for key, value in values.items():
        text = "" if value is None else str(value).strip()
        if key == "name" or text == "":
            continue
        if key not in shown:
            raise FieldError(key, f"{key}: not a field of the {task} / {method} form")
        text = check_field(key, lambda k=key, t=text: confined(workspace, k, t))
        overrides.append(f"{key}={text}")
    overrides.append(f"output.dir={workspace.run_dir(name)}")
    return overrides


def confined(workspace: Workspace, key: str, text: str) -> str:
    """A field's value with the paths it names made workspace paths; one that leads out of the
    workspace is an error. Data files, model folders (an embedded name aside), the runs PPO and
    reward functions read, the files of reward functions (they are run as code)."""
    if key in PATH_FIELDS:
        return workspace.data_path(text)
    if key in ("model.name", "task.scope_guard"):
        return text if text in EMBEDDED else str(workspace.inside(text))
    if key == "task.reward_run":
        return str(workspace.inside(text))
    if key == "task.rewards":
        return confined_rewards(workspace, text)
    return text


def confined_rewards(workspace: Workspace, text: str) -> str:
    """task.rewards as typed (a YAML list): each user function's FILE.py and each reward run
    inside the workspace."""
    try:
        specs = yaml.safe_load(text)
    except yaml.YAMLError:
        return text  # the config's own validation words the error
    if not isinstance(specs, list):
        return text
    for spec in (s for s in specs if isinstance(s, dict)):
        function = str(spec.get("function", ""))
        file, colon, name = function.rpartition(":")
        if colon and file.endswith(".py"):
            spec["function"] = f"{workspace.inside(file)}:{name}"
        if spec.get("run"):
            spec["run"] = str(workspace.inside(str(spec["run"])))
    return yaml.safe_dump(specs, default_flow_style=True, width=10**6).strip()


def check_field(field: str, check):
    try:
        return check()
    except TunelabError as exc:
        raise FieldError(field, f"{field}: {exc}") from None


def build_config(workspace: Workspace, values: dict[str, Any]) -> tuple[Any, dict, str]:
    """The validated RunConfig, the raw settings (the YAML the user would write) and its source
    name; a bad value is a FieldError on its field, worded as `tunelab train` words it."""
    overrides = overrides_of(workspace, values)
    source = f"configs/{values['name']}.yaml"
    raw = apply_overrides({}, overrides)
    try:
        config = config_model().model_validate(raw)
    except ValidationError as exc:
        field, _ = validation_problem(exc)
        raise FieldError(field, format_validation_error(exc, source)) from None
    return config, raw, source


def data_error_field(error: DataError, config) -> str:
    """Which form field a data error belongs to: a missing column goes by its column setting,
    anything else by the file it was found in."""
    data = config.data
    if error.field is not None and "no column" in str(error):
        for key in COLUMN_FIELDS:
            if getattr(data, key.split(".")[1]) == error.field:
                return key
    for key in PATH_FIELDS:
        if getattr(data, key.split(".")[1]) == error.file:
            return key
    return "data.path"


def config_yaml(raw: dict) -> str:
    return yaml.safe_dump(raw, sort_keys=False)


def train_command(source: str) -> str:
    return f"tunelab train {source}"
