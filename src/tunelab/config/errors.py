"""A pydantic ValidationError of a run config as one line naming the field the way the user
writes it (task.reward_run, not the union's internal path)."""

from pydantic import ValidationError

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
        problem = "unknown key"
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
