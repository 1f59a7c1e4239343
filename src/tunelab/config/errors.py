"""A pydantic ValidationError of a run config as one line naming the field the way the user
writes it (task.reward_run, not the union's internal path)."""

import difflib

from pydantic import BaseModel, ValidationError

from tunelab.config.settings import DEFAULT_SECTIONS, METHOD_SETTINGS, TASK_SETTINGS


def validation_problem(error: ValidationError) -> tuple[str, str]:
    """The first bad field (dotted, as the user writes it) and what is wrong with it."""
    first = error.errors()[0]
    loc = [str(p) for p in first["loc"] if not str(p).startswith("function-after")]
    if loc[0] in DEFAULT_SECTIONS and len(loc) > 2:
        del loc[1]  # the union's tag (task.ppo.reward_run): the user wrote task.reward_run
    field = ".".join(loc)
    problem = first["msg"]
    if first["type"] == "extra_forbidden":
        near = difflib.get_close_matches(loc[-1], known_keys(loc[:-1]), n=1)
        problem = "unknown key" + (f" (did you mean `{near[0]}`?)" if near else "")
    elif first["type"] == "union_tag_invalid":
        registry = TASK_SETTINGS if first["loc"][0] == "task" else METHOD_SETTINGS
        name = first["ctx"]["tag"]
        problem = f"unknown {registry.kind} '{name}'; known: {', '.join(registry.names())}"
        field += ".name"
    return field, problem


def format_validation_error(error: ValidationError, source: str) -> str:
    """Name the first bad field in one line, the way a user reads it."""
    field, problem = validation_problem(error)
    extra = f" ({len(error.errors()) - 1} more)" if len(error.errors()) > 1 else ""
    return f"{source}: {field}: {problem}{extra}"


def known_keys(section: list[str]) -> list[str]:
    """The keys a config section takes (for task and method: those of every registered task or
    method, since a misspelt key is told apart before the name is), to suggest the nearest."""
    from tunelab.config.sections import RunConfig

    if section[:1] == ["task"]:
        models = TASK_SETTINGS.values()
    elif section[:1] == ["method"]:
        models = METHOD_SETTINGS.values()
    else:
        models = [RunConfig]
        for name in section:
            field = next((m.model_fields.get(name) for m in models if name in m.model_fields), None)
            kind = field.annotation if field is not None else None
            models = [kind] if isinstance(kind, type) and issubclass(kind, BaseModel) else []
    return sorted({key for model in models for key in model.model_fields})
