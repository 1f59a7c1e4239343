"""Base classes for config sections, and the registries of the settings classes that tasks and
methods declare (no heavy imports here: the config layer builds its unions from these)."""

from pydantic import BaseModel, ConfigDict, Field

from tunelab.registry import Registry


class StrictModel(BaseModel):
    """A config section: unknown keys are errors, so a typo never passes silently; .inf and .nan
    are refused (a NaN learning rate trains a NaN model)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class MethodSettings(StrictModel):
    """Settings of one fine-tuning method; each method file adds `name: Literal[...]`."""

    name: str


class TaskSettings(StrictModel):
    """Settings of one task; each task file adds `name: Literal[...]` and its own fields."""

    name: str


class PromptedTaskSettings(TaskSettings):
    """Tasks whose rows are questions rendered through a prompt template."""

    template: str = Field(
        "auto",
        description="Prompt template: chat (the tokenizer's), alpaca, qa, plain, or your own "
        "text with {prompt}; auto: chat when the tokenizer has one, else alpaca.",
    )
    system: str | None = Field(None, description="A system message for chat templates.")


# Filled by tasks/base.register_task and methods/base.register: one call registers both the
# task or method and its settings class, which the config union picks up.
DEFAULT_SECTIONS = {"task": "classify", "method": "freeze"}  # the seed-000 recipe
TASK_SETTINGS: Registry[type[TaskSettings]] = Registry("task")
METHOD_SETTINGS: Registry[type[MethodSettings]] = Registry("method")
