"""Reward functions for grpo and rloo: `task.rewards` lists them with weights. Built-ins check a
completion against the row (exact_number, exact_text), a pattern (regex), its length
(length_penalty), or ask a finished tunelab reward run (reward_run); any other name is the
user's own function, `FILE.py:NAME`.

A user's function is called as TRL calls reward functions, minus TRL's internals:

    def correct_answer(prompts: list[str], completions: list[str], **fields) -> list[float]

`prompts[i]` is row i's prompt as the model saw it (template applied), `completions[i]` the
text generated for it, and `fields["answer"][i]` (every field of the data row, by its name,
plus `question`, the prompt before the template) belongs to the same row. It returns one number
per completion. A function that raises, returns a non-number or the wrong count stops the run
with one line naming the function and the data row (written here: TRL raises a bare
ValueError deep in its loop, without the row)."""

import importlib.util
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from tunelab.config.settings import StrictModel
from tunelab.errors import DataError, TunelabError

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
BUILT_INS = ("exact_number", "exact_text", "regex", "length_penalty", "reward_run")
CORRECTNESS = frozenset({"exact_number", "exact_text"})  # what pass@1 counts
INTERNAL = ("_row", "_file")  # dataset columns that locate a row; not passed to user functions


class RewardSpec(StrictModel):
    function: str = Field(
        description="exact_number, exact_text, regex, length_penalty, reward_run, or your own "
        "FILE.py:NAME (see docs/rl.md for its signature)."
    )
    weight: float = Field(
        1.0,
        description="Its weight in the summed reward (not 0: a reward weighted 0 is no reward).",
    )
    field: str = Field("answer", description="exact_number / exact_text: the row's answer field.")
    pattern: str | None = Field(None, description="regex: what the completion must contain.")
    max_tokens: int | None = Field(
        None, ge=1, description="length_penalty: completions longer than this lose reward."
    )
    run: str | None = Field(None, description="reward_run: a finished tunelab reward run.")

    @model_validator(mode="after")
    def settings_of_the_function(self):
        if self.weight == 0 or not math.isfinite(self.weight):
            raise ValueError("weight must be a finite number other than 0 (0 adds nothing)")
        needs = {"regex": "pattern", "length_penalty": "max_tokens", "reward_run": "run"}
        if self.function in needs and getattr(self, needs[self.function]) is None:
            raise ValueError(f"{self.function} needs {needs[self.function]}")
        if self.function == "regex":
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a regular expression: {exc}") from None
        if self.function not in BUILT_INS and not re.fullmatch(r".+\.py:\w+", self.function):
            raise ValueError(
                f"'{self.function}' is neither a built-in ({', '.join(BUILT_INS)}) nor FILE.py:NAME"
            )
        return self


def last_number(text: str) -> float | None:
    found = NUMBER.findall(text.replace(",", ""))
    return float(found[-1]) if found else None


def normalized(text: str) -> str:
    first = next((line for line in text.strip().splitlines() if line.strip()), "")
    return " ".join(first.casefold().split()).rstrip(".!")


def same_number(completion: str, answer: str) -> bool:
    """exact_number: the completion's last number is the answer."""
    return last_number(completion) == last_number(answer)


def same_text(completion: str, answer: str) -> bool:
    """exact_text: the completion's first line is the answer (case and spacing aside)."""
    return normalized(completion) == normalized(answer)


def field_match(spec: RewardSpec, same: Callable[[str, str], bool]) -> Callable:
    """1 where `same(completion, the row's field)`, else 0."""

    def reward(prompts, completions, **fields):
        answers = fields[spec.field]
        return [float(same(c, str(a))) for c, a in zip(completions, answers, strict=True)]

    return reward


def regex(spec: RewardSpec) -> Callable:
    pattern = re.compile(spec.pattern)
    return lambda prompts, completions, **fields: [
        float(pattern.search(c) is not None) for c in completions
    ]


def length_penalty(spec: RewardSpec, tokenizer) -> Callable:
    """0 up to max_tokens, then minus the share of tokens beyond it."""
    limit = spec.max_tokens

    def reward(prompts, completions, **fields):
        lengths = [len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in completions]
        return [-max(0, n - limit) / limit for n in lengths]

    return reward


def reward_run(spec: RewardSpec, batch_size: int) -> Callable:
    from tunelab.tasks.preference.ppo import reward_scorer  # loads a model: only when named

    score = reward_scorer(spec.run, batch_size)
    return lambda prompts, completions, **fields: score(fields["question"], completions).tolist()


def user_function(spec: RewardSpec) -> Callable:
    file, _, name = spec.function.rpartition(":")
    path = Path(file)
    if not path.is_file():
        raise TunelabError(f"task.rewards: {spec.function}: no file {path}")
    module_spec = importlib.util.spec_from_file_location(f"tunelab_rewards_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:  # the user's file: its error is theirs, in one line
        # SystemExit too: a file that calls sys.exit() at import ended the run with exit 0
        raise TunelabError(
            f"task.rewards: {spec.function}: {path} fails to load: {exc!r}"
        ) from None
    function = getattr(module, name, None)
    if not callable(function):
        raise TunelabError(f"task.rewards: {spec.function}: {path} has no function {name}")
    return function


@dataclass
class Reward:
    """One entry of task.rewards, ready to call: its unique name (TRL's log key), weight, and
    the checked function TRL calls."""

    name: str
    weight: float
    correctness: bool
    function: Callable


def where(fields: dict[str, list], index: int) -> tuple[str, int | None]:
    return str(fields.get("_file", ["data"])[index]), fields.get("_row", [None])[index]


def first_failing_row(function: Callable, prompts, completions, fields) -> int:
    """The first row whose call alone raises (0 when none does alone)."""
    for i in range(len(completions)):
        one = {key: [values[i]] for key, values in fields.items()}
        try:
            function(prompts[i : i + 1], completions[i : i + 1], **one)
        except Exception:  # noqa: BLE001 - looking for the row that makes the user's code raise
            return i
    return 0


def checked(name: str, function: Callable) -> Callable:
    """`function` as TRL calls it, with its failures turned into one line naming the row."""

    def reward(prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        located = {key: kwargs[key] for key in INTERNAL if key in kwargs}
        fields = {k: v for k, v in kwargs.items() if isinstance(v, list) and k not in INTERNAL}
        try:
            values = function(prompts, completions, **fields)
        except Exception as exc:  # the user's code: any error it raises becomes one line
            row = first_failing_row(function, prompts, completions, fields)
            file, number = where(located, row)
            raise DataError(file, f"reward {name} raised {exc!r}", row=number) from None
        if not isinstance(values, list | tuple):
            file, number = where(located, 0)
            problem = (
                f"returned a {type(values).__name__}, not a list of {len(completions)} numbers"
            )
            raise DataError(file, f"reward {name} {problem}", row=number)
        if len(values) != len(completions):
            file, number = where(located, 0)
            problem = f"returned {len(values)} values for {len(completions)} completions"
            raise DataError(file, f"reward {name} {problem}", row=number)
        for i, value in enumerate(values):
            if not isinstance(value, int | float) or not math.isfinite(value):
                file, number = where(located, i)
                raise DataError(
                    file,
                    f"reward {name} returned {value!r} ({type(value).__name__}), not a finite "
                    "number",
                    row=number,
                )
        return [float(v) for v in values]

    reward.__name__ = name  # TRL logs rewards/<name>/mean
    return reward


def build_rewards(specs: list[RewardSpec], tokenizer, batch_size: int) -> list[Reward]:
    rewards, seen = [], set()
    for spec in specs:
        kind = spec.function
        if kind == "length_penalty":
            function = length_penalty(spec, tokenizer)
        elif kind == "reward_run":
            function = reward_run(spec, batch_size)
        elif kind == "regex":
            function = regex(spec)
        elif kind in CORRECTNESS:
            function = field_match(spec, same_number if kind == "exact_number" else same_text)
        else:
            function = user_function(spec)
        name = kind.rpartition(":")[2]
        name = name if name not in seen else f"{name}_{len(seen)}"
        seen.add(name)
        rewards.append(Reward(name, spec.weight, kind in CORRECTNESS, checked(name, function)))
    return rewards


def check_answer_fields(specs: list[RewardSpec], rows: list[dict]) -> None:
    """Before training: every row has the field an exact_* reward reads, and exact_number's
    parses as a number."""
    for spec in (s for s in specs if s.function in CORRECTNESS):
        for row in rows:
            value = row.get(spec.field)
            if value is None:
                raise DataError(row["_file"], f"{spec.function} needs it", row["_row"], spec.field)
            if spec.function == "exact_number" and last_number(str(value)) is None:
                problem = f"{value!r} is not a number (exact_number)"
                raise DataError(row["_file"], problem, row["_row"], spec.field)
