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
    """The form's non-empty values as `key=value` overrides; data paths made workspace paths
    (a path outside it is the path field's error) and the run folder put under runs/."""
    name = check_field("name", lambda: check_name(str(values.get("name", ""))))
    overrides = []
    for key, value in values.items():
        text = "" if value is None else str(value).strip()
        if key == "name" or text == "":
            continue
        if key in PATH_FIELDS:
            text = check_field(key, lambda t=text: workspace.data_path(t))
        elif key == "model.name" and text not in EMBEDDED:
            text = check_field(key, lambda t=text: str(workspace.inside(t)))
        overrides.append(f"{key}={text}")
    overrides.append(f"output.dir={workspace.run_dir(name)}")
    return overrides


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
