"""Run configuration: YAML validated by pydantic, with dotted command-line overrides. The task
and method sections are discriminated unions of the settings classes the task and method files
register (settings.TASK_SETTINGS / METHOD_SETTINGS); the union is built when a config is first
validated, so a task registered later (a plugin, a test) is accepted too."""

import functools
import json
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import Field, ValidationError, create_model

from tunelab.config.errors import format_validation_error
from tunelab.config.sections import (
    BUILTIN_SPAM,
    MICRO_BATCH_TOKENS,
    DataConfig,
    EvalConfig,
    MixSource,
    ModelConfig,
    OutputConfig,
    RunConfig,
    TrainConfig,
)
from tunelab.config.settings import (
    METHOD_SETTINGS,
    TASK_SETTINGS,
)
from tunelab.config.yaml_files import read_yaml
from tunelab.errors import TunelabError
from tunelab.registry import Registry

# the sections live in sections.py; importable from tunelab.config as before
__all__ = [
    "BUILTIN_SPAM",
    "MICRO_BATCH_TOKENS",
    "DataConfig",
    "EvalConfig",
    "MixSource",
    "ModelConfig",
    "OutputConfig",
    "RunConfig",
    "TrainConfig",
    "apply_overrides",
    "config_model",
    "json_schema",
    "load_config",
    "save_config",
    "split_seed",
]


def union_of(registry: Registry) -> Any:
    """The registered settings classes as one pydantic union, told apart by `name`."""
    classes = tuple(registry.values())
    if len(classes) == 1:
        return classes[0]
    return Annotated[Union[classes], Field(discriminator="name")]  # noqa: UP007 - built at runtime


@functools.cache
def _config_model(tasks: tuple[str, ...], methods: tuple[str, ...]) -> type[RunConfig]:
    return create_model(
        "RunConfig",
        __base__=RunConfig,
        task=(union_of(TASK_SETTINGS), ...),
        method=(union_of(METHOD_SETTINGS), ...),
    )


def config_model() -> type[RunConfig]:
    """RunConfig with the task and method unions of everything registered so far."""
    if not TASK_SETTINGS.names() or not METHOD_SETTINGS.names():
        raise TunelabError("no task or method registered; import tunelab.pipeline first")
    return _config_model(tuple(TASK_SETTINGS.names()), tuple(METHOD_SETTINGS.names()))


def settings_fields(registry: Registry, name: str) -> set[str]:
    """The setting names of a registered task or method (none for an unknown name)."""
    return set(registry.get(name).model_fields) - {"name"} if name in registry else set()


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set `a.b.c=value` pairs in a nested dict; values are parsed as YAML (2 -> int).

    Choosing another method (`method.name=qlora`) or task keeps only the settings the new one
    also has (lora's `r` and `target_modules` carry over to qlora; freeze's `k` means nothing to
    lora)."""
    registries = {"method.name": ("method", METHOD_SETTINGS), "task.name": ("task", TASK_SETTINGS)}
    for item in overrides:
        key, _, value = item.partition("=")
        section, registry = registries.get(key, (None, None))
        current = raw.get(section) if section else None
        if isinstance(current, dict) and current.get("name") != value:
            shared = settings_fields(registry, value)
            raw[section] = {k: v for k, v in current.items() if k in shared}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TunelabError(f"override '{item}' is not of the form key.sub=value")
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise TunelabError(f"override '{item}': '{part}' is not a section")
            node = child
        node[leaf] = override_value(key, value)
    return raw


def override_value(key: str, value: str):
    """The value as YAML reads it (2 -> int, [a, b] -> list); a parse error is one line."""
    if not value:
        return None
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError as exc:
        problem = str(getattr(exc, "problem", None) or "not a YAML value")
        raise TunelabError(
            f"override '{key}={value}': {problem}; quote text, e.g. {key}='{value}'"
        ) from None


def validate(raw: dict[str, Any], source: str) -> RunConfig:
    try:
        return config_model().model_validate(raw)
    except ValidationError as exc:
        raise TunelabError(format_validation_error(exc, source)) from None


def load_config(path: str | Path | None, overrides: list[str] = ()) -> RunConfig:
    """Read a YAML config (or the defaults), apply overrides, validate, fill the run directory."""
    raw = read_yaml(Path(path)) if path else {}
    raw = apply_overrides(raw, list(overrides))
    config = validate(raw, str(path or "defaults"))
    if config.output.dir is None:
        stem = Path(path).stem if path else "default"
        config.output.dir = str(Path("runs") / stem)
    return config


def save_config(config: RunConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))


def json_schema() -> str:
    return json.dumps(config_model().model_json_schema(), indent=2)


def split_seed(config: RunConfig) -> int:
    """The seed of the data's choices: data.split_seed, else train.seed."""
    seed = config.data.split_seed
    return config.train.seed if seed is None else seed
