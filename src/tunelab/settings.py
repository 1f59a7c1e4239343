"""Base classes for config sections; method files subclass MethodSettings (no heavy imports here)."""

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """A config section: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class MethodSettings(StrictModel):
    """Settings of one fine-tuning method; each method file adds `name: Literal[...]`."""

    name: str
