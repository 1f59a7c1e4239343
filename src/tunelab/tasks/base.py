"""What a task is: one unit that owns its settings, data preparation, model kind, evaluation
before and after, score, report sections and the name of the trainer that fits it.

The run sequence (pipeline.run), the run record, report, compare and the trainers ask the task;
none of them branches on a task's name. A task is a subclass of `Task` registered with
`register_task`; its settings class joins the config's task union by the same call."""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import ClassVar

from accelerate import Accelerator
from pydantic import BaseModel
from torch import nn
from transformers import PreTrainedTokenizerBase

from tunelab.config import RunConfig
from tunelab.config.settings import TASK_SETTINGS, TaskSettings
from tunelab.errors import TunelabError
from tunelab.methods import METHODS, MethodSpec
from tunelab.models.loader import load_causal_lm
from tunelab.registry import Registry
from tunelab.run_record import ModelKind
from tunelab.runtime import make_accelerator, process_state


@dataclass(frozen=True)
class Score:
    """The figure that ranks runs of a task (compare's leaderboard, the CLI's last line)."""

    name: str  # what the CLI, the summary and the leaderboard call it
    key: str = ""  # its field in eval_before/after.json; default: the name
    higher_is_better: bool = True

    @property
    def field(self) -> str:
        return self.key or self.name


@dataclass(frozen=True)
class Column:
    """A leaderboard column a task adds: a key of its train_summary.json."""

    key: str
    title: str
    fmt: str = "{:.4f}"


@dataclass
class RunContext:
    """What every stage of one run shares (one object instead of ten positional arguments)."""

    config: RunConfig
    method: MethodSpec
    run_dir: Path
    resume: bool
    model_path: str  # the folder the model loads from (an embedded model converted once)
    tokenizer: PreTrainedTokenizerBase

    @cached_property
    def accelerator(self) -> Accelerator:
        return make_accelerator(self.config.train)

    def causal_lm(self) -> nn.Module:
        """The base causal LM as the method loads it (4-bit for qlora)."""
        options = self.method.options(self.config.method)
        return load_causal_lm(self.model_path, self.config.model.trust_remote_code, **options)

    @property
    def is_main(self) -> bool:
        return process_state().is_main_process

    @property
    def processes(self) -> int:
        return process_state().num_processes


class Task(ABC):
    """One task. Subclasses set the class attributes and implement the four stages, plus the
    hooks of the trainer named by `trainer` (its Protocol, beside it in train/), which
    `register_task` checks."""

    name: ClassVar[str]
    settings: ClassVar[type[TaskSettings]]
    methods: ClassVar[frozenset[str]] = frozenset()  # a plugin may list method names instead
    model_kind: ClassVar[ModelKind]
    trainer: ClassVar[str]  # "loop", "trl" or "ppo" (train.TRAINERS)
    score: ClassVar[Score]
    columns: ClassVar[tuple[Column, ...]] = ()  # extra leaderboard columns
    quantizable: ClassVar[bool] = False  # `tunelab quantize` measures it
    labels_texts: ClassVar[bool] = False  # `predict` and `eval` take its runs (classes of texts)
    monitors: ClassVar[frozenset[str]] = frozenset({"val_loss"})  # train.monitor choices
    caches_frozen_blocks: ClassVar[bool] = False  # loop trainer: head/freeze run them once
    scores_on_val: ClassVar[bool] = False  # eval.split=val: compare's search may tune it
    # data.* / eval.* settings this task does not read: changing one is a one-line error (as a
    # train.* setting its trainer ignores is), never silently without effect
    ignores: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def accepts(cls, method: MethodSpec) -> bool:
        """Whether this task trains with (or prompts through) `method`: built-in tasks ask the
        method's capabilities (methods/base.py), never its name; a plugin may list names."""
        return method.name in cls.methods

    def __init__(self, run: RunContext):
        self.run = run
        self.config = run.config
        self.tokenizer = run.tokenizer

    @abstractmethod
    def prepare(self) -> dict:
        """Read, split and encode the data; returns the data summary (data_summary.json)."""

    @abstractmethod
    def load_model(self) -> nn.Module:
        """The model the method adapts (base weights, plus a new head where the task has one)."""

    @abstractmethod
    def evaluate(self, model: nn.Module) -> dict:
        """Held-out metrics (eval_before.json / eval_after.json); includes `score.name`."""

    def scores(self, before: dict, after: dict) -> dict:
        """train_summary.json's score fields: the headline and whatever compare shows."""
        score, split = self.score, self.config.eval.split
        return {
            "score_name": score.name if split == "test" else f"{split}_{score.field}",
            "higher_is_better": score.higher_is_better,
            "score_before": before[score.field],
            "score": after[score.field],
            "score_field": score.field,  # its per-example values: eval_after.json per_example
            "scored_on": self.config.eval.split,
        }

    @classmethod
    def columns_for(cls, summary: dict) -> tuple[Column, ...]:
        """The leaderboard columns of one run's summary: `columns`, plus any the run's own
        settings add (an sft run's extra held-out sets)."""
        return cls.columns

    def record(self) -> dict:
        """Run-record fields this task adds (labels, template, ...): what loading back needs."""
        return {}

    def side_run(self):
        """A second run this one needs, trained first in its own folder (a RunConfig), or None:
        an sft run's scope guard."""
        return None

    def use_side_run(self, run_dir: Path) -> None:
        """The side run, finished: the task loads what it needs from it."""
        raise NotImplementedError(f"{self.name} names a side run but does not use it")

    def split_texts(self) -> dict[str, list[str]]:
        """Each split's rows as text, after `prepare` (the doctor's leakage check); {} when the
        task's rows are not texts to compare."""
        return {}

    def preview_texts(self, rows: int) -> list[str]:
        """The first training rows as text, for `preview`: by default as `split_texts` has them."""
        return self.split_texts().get("train", [])[:rows]

    def preview(self, rows: int) -> list:
        """`tunelab data preview` and the UI's New-run check: rich Text lines, a header and the
        row, of the first training rows as the task reads them (a task may show more)."""
        from rich.text import Text

        texts = self.preview_texts(rows)
        if not texts:
            raise TunelabError(f"data preview: task '{self.name}' keeps no training rows to show")
        return [
            line for i, text in enumerate(texts, 1) for line in (Text(f"--- row {i}"), Text(text))
        ]

    @classmethod
    @abstractmethod
    def report(cls, run_dir: Path, data: dict, before: dict, after: dict) -> list[str]:
        """Markdown lines of the report after its common header; draws the task's plots."""


def prompt_record(config: RunConfig, template: str | None) -> dict:
    """Run-record fields of a task whose model answers prompts: how generate, chat and a later
    run render them (the template resolved at training, its system message, answer length)."""
    return {
        "template": template,
        "system": config.task.system,
        "max_new_tokens": config.eval.max_new_tokens,
    }


TASKS: Registry[type[Task]] = Registry("task")


# The hooks each trainer calls on a task: a typing.Protocol declared beside the trainer
# (train/loop_trainer.py, trl_bridge.py, ppo.py) and handed here, a layer below, so that a task
# lacking one is refused when it registers, not with an AttributeError in the middle of a run.
TRAINER_HOOKS: dict[str, type] = {}


def hook_names(protocol: type) -> list[str]:
    """A protocol's members: its methods and properties, and its annotated attributes."""
    members = {n for n in vars(protocol) if not n.startswith("_")}
    return sorted(members | set(getattr(protocol, "__annotations__", {})))


def provides(task: type[Task], name: str) -> bool:
    """On the class (a method, property or class attribute) or declared for its instances."""
    declared = (getattr(k, "__annotations__", {}) for k in task.__mro__)
    return hasattr(task, name) or any(name in names for names in declared)


def check_hooks(task: type[Task]) -> None:
    protocol = TRAINER_HOOKS.get(task.trainer)
    missing = [n for n in hook_names(protocol) if not provides(task, n)] if protocol else []
    if missing:
        raise TunelabError(
            f"task '{task.name}' trains with the {task.trainer} trainer but lacks "
            f"{', '.join(missing)} (its hooks: {protocol.__module__}.{protocol.__name__})"
        )


def register_trainer_hooks(trainer: str, protocol: type) -> None:
    """A trainer's protocol; tasks registered before it are checked now, later ones when they
    register."""
    TRAINER_HOOKS[trainer] = protocol
    for task in TASKS.values():
        if task.trainer == trainer:
            check_hooks(task)


def register_task(task: type[Task]) -> type[Task]:
    """Register a task class and its settings (the config's task union picks them up); a task
    without its trainer's hooks is refused here."""
    check_hooks(task)
    TASK_SETTINGS.register(task.name)(task.settings)
    return TASKS.register(task.name)(task)


def changed_fields(section: BaseModel) -> list[str]:
    """The fields set to something other than their default (a finished run's config.yaml
    writes every field out: a default written out changes nothing)."""
    fields = type(section).model_fields
    return sorted(
        name
        for name in section.model_fields_set
        if getattr(section, name) != fields[name].get_default(call_default_factory=True)
    )


def check_read_settings(task: type[Task], config: RunConfig) -> None:
    """Refuse a changed data.* or eval.* setting the task does not read."""
    for prefix, section in (("data", config.data), ("eval", config.eval)):
        unread = [
            f"{prefix}.{n}" for n in changed_fields(section) if f"{prefix}.{n}" in task.ignores
        ]
        if unread:
            raise TunelabError(
                f"{unread[0]}: task '{task.name}' does not read it (it would change nothing); "
                "remove it"
            )


def check_method(task: type[Task], method: MethodSpec) -> None:
    """The one place a (task, method) pair is accepted or refused."""
    if not task.accepts(method):
        accepted = [name for name in METHODS.names() if task.accepts(METHODS.get(name))]
        raise TunelabError(
            f"method.name: method '{method.name}' does not train task '{task.name}'; "
            f"it takes {', '.join(accepted)}"
        )
