"""An experiment file: one base config, variants as overrides, and what makes the verdicts hold
up: seeds, a search on validation per variant, and one budget for every run."""

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from tunelab.config.settings import StrictModel
from tunelab.config.yaml_files import read_yaml
from tunelab.errors import TunelabError

Choice = str | int | float | bool
RANGE_KINDS = ("log", "uniform", "int")


class Param(StrictModel):
    """One searched setting: a list of choices, or a range `{log|uniform|int: [low, high]}`."""

    choices: list[Choice] | None = None
    kind: Literal["log", "uniform", "int"] | None = None
    low: float | None = None
    high: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, raw: Any) -> Any:
        if isinstance(raw, list):
            return {"choices": raw}
        if isinstance(raw, dict) and len(raw) == 1 and next(iter(raw)) in RANGE_KINDS:
            kind, bounds = next(iter(raw.items()))
            if not (isinstance(bounds, list) and len(bounds) == 2):
                raise ValueError(f"{kind}: give [low, high]")
            return {"kind": kind, "low": bounds[0], "high": bounds[1]}
        raise ValueError("give a list of choices or one of {log|uniform|int: [low, high]}")

    @model_validator(mode="after")
    def _sound(self) -> "Param":
        if self.choices is not None and not self.choices:
            raise ValueError("an empty list of choices")
        if self.kind and not self.low < self.high:
            raise ValueError(f"{self.kind}: low must be below high")
        if self.kind == "log" and self.low <= 0:
            raise ValueError("log: the range must be above 0")
        return self

    def at(self, u: float) -> Choice:
        """The setting at fraction u of its range (a log range in log space) or choice list."""
        if self.choices is not None:
            return self.choices[min(int(u * len(self.choices)), len(self.choices) - 1)]
        if self.kind == "int":
            return min(int(self.low + u * (self.high - self.low + 1)), int(self.high))
        if self.kind == "log":
            return float(
                math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
            )
        return float(self.low + u * (self.high - self.low))

    def suggest(self, trial, name: str) -> Choice:
        """This setting's value for an Optuna trial."""
        if self.choices is not None:
            return trial.suggest_categorical(name, self.choices)
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high))
        return trial.suggest_float(name, self.low, self.high, log=self.kind == "log")


class Search(StrictModel):
    """`search:` in an experiment: `trials: N`, `prune: bool` and the searched settings by their
    dotted names (`train.lr: {log: [1e-5, 1e-2]}`, `method.r: [4, 8, 16]`)."""

    trials: int = Field(8, ge=0, description="Trials per variant; 0: no search.")
    prune: bool = Field(True, description="Stop a trial whose validation curve falls behind.")
    space: dict[str, Param] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _split_settings(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw
        known = {"trials", "prune"}
        return {
            **{k: v for k, v in raw.items() if k in known},
            "space": {k: v for k, v in raw.items() if k not in known},
        }

    @field_validator("space")
    @classmethod
    def _dotted(cls, space: dict[str, Param]) -> dict[str, Param]:
        for name in space:
            if "." not in name:
                raise ValueError(f"'{name}': name a setting by section, e.g. train.lr")
        return space


class Budget(StrictModel):
    """The same training budget for every trial and final run: whichever ends first."""

    tokens: int | None = Field(None, gt=0, description="Real tokens trained on (train.max_tokens).")
    minutes: float | None = Field(None, gt=0, description="Training minutes (train.max_minutes).")

    def overrides(self) -> list[str]:
        pairs = (("train.max_tokens", self.tokens), ("train.max_minutes", self.minutes))
        return [f"{key}={value}" for key, value in pairs if value is not None]


class Variant(StrictModel):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Run folder name and table row.")
    overrides: list[str] = Field(
        default_factory=list, description="Dotted overrides: method.name=lora"
    )
    base: str | None = Field(
        None, description="This variant's own config (steps of a pipeline such as RLHF)."
    )
    search: dict | None = Field(
        None, description="This variant's search: its settings replace or add to the shared one."
    )

    @field_validator("name")
    @classmethod
    def a_folder_of_its_own(cls, name: str) -> str:
        if set(name) == {"."}:  # `.` and `..` would train into the experiment's folder or above
            raise ValueError(f"'{name}' names no folder of its own; use letters or digits")
        return name

    @field_validator("overrides")
    @classmethod
    def dotted_settings(cls, overrides: list[str]) -> list[str]:
        for override in overrides:
            key, equals, _ = override.partition("=")
            if not equals or not key.strip():
                raise ValueError(f"'{override}' is not key=value (e.g. method.name=lora)")
        return overrides


class Experiment(StrictModel):
    base: str = Field(description="Base run config, relative to the experiment file.")
    output_dir: str = Field(description="Each variant runs in <output_dir>/<name>.")
    overrides: list[str] = Field(default_factory=list, description="Applied to every variant.")
    seeds: list[int] | None = Field(
        None,
        min_length=1,
        description="Every variant once per seed (train.seed); the data split stays fixed.",
    )
    search: dict | None = Field(None, description="Searched on validation for every variant.")
    budget: Budget = Budget()
    variants: list[Variant] = Field(min_length=1)

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, seeds: list[int] | None) -> list[int] | None:
        if seeds is not None and len(set(seeds)) < len(seeds):
            raise ValueError(f"the seeds must differ, got {seeds}")
        return seeds

    def search_of(self, variant: Variant) -> Search | None:
        """The variant's search: the shared one with the variant's settings laid over it."""
        merged = {**(self.search or {}), **(variant.search or {})}
        return Search.model_validate(merged) if merged else None


def field_path(error: dict) -> str:
    return ".".join(str(p) for p in error["loc"] if not str(p).startswith("function-"))


def load_experiment(path: Path) -> Experiment:
    try:
        experiment = Experiment.model_validate(read_yaml(path))
        for variant in experiment.variants:
            try:
                experiment.search_of(variant)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = f"variants.{variant.name}.search" if variant.search else "search"
                raise TunelabError(f"{path}: {where}.{field_path(first)}: {first['msg']}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise TunelabError(f"{path}: {field_path(first)}: {first['msg']}") from None
    names = [variant.name for variant in experiment.variants]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise TunelabError(f"{path}: variants: the name '{twice[0]}' is used twice")
    return experiment
