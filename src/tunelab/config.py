"""Run configuration: YAML validated by pydantic, with dotted command-line overrides."""

import json
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import Field, ValidationError, model_validator

from tunelab.errors import TunelabError
from tunelab.methods import METHODS
from tunelab.settings import StrictModel
from tunelab.train.micro_batches import MICRO_BATCH_TOKENS

BUILTIN_SPAM = "builtin:sms_spam"


class ModelConfig(StrictModel):
    name: str = Field(
        "smollm2-135m",
        description="Embedded name (smollm2-135m, minilm-l6), a local folder, or a Hub id.",
    )
    trust_remote_code: bool = Field(False, description="Run model code shipped with a Hub repo.")


class MixSource(StrictModel):
    path: str = Field(description="Another training file (same formats as data.path).")
    weight: float = Field(
        1.0, gt=0, description="Rows drawn per training row of data.path (0.5: half as many)."
    )


class DataConfig(StrictModel):
    path: str = Field(
        BUILTIN_SPAM,
        description="Training file (csv/tsv/json/jsonl/parquet); for pretrain also a folder of .txt/.md.",
    )
    val_path: str | None = Field(None, description="Validation file; else split from `path`.")
    test_path: str | None = Field(None, description="Test file; else split from `path`.")
    format: Literal["auto", "csv", "tsv", "json", "jsonl", "parquet"] = "auto"
    columns: list[str] | None = Field(
        None, description="Column names for a CSV/TSV file without a header row."
    )
    text_field: str = "text"
    label_field: str = "label"
    balance: Literal["none", "undersample"] = Field(
        "none", description="undersample: cut every class to the size of the smallest."
    )
    split: tuple[float, float, float] = Field(
        (0.7, 0.1, 0.2), description="Stratified train/val/test fractions."
    )
    max_length: int = Field(256, gt=1, description="Longest input in tokens.")
    overlong: Literal["truncate", "drop"] = Field(
        "truncate", description="What to do with rows longer than max_length (counted either way)."
    )
    truncation_side: Literal["right", "left"] = "right"
    limit_train: int | None = Field(None, gt=0, description="Use at most this many training rows.")
    mix: list[MixSource] = Field(
        [], description="sft: more training sources mixed in by weight (multitask, FLAN-style)."
    )

    @model_validator(mode="after")
    def _split_sums_to_one(self) -> "DataConfig":
        if abs(sum(self.split) - 1.0) > 1e-6 or min(self.split) < 0:
            raise ValueError(
                f"data.split must be three non-negative fractions summing to 1, got {self.split}"
            )
        return self


class TaskConfig(StrictModel):
    name: Literal["classify", "sft", "pretrain", "reward", "dpo", "ppo"] = Field(
        "classify",
        description="classify: new head; sft: instruction / Q&A tuning; pretrain: raw domain "
        "text; reward: a reward model from preference pairs; dpo: direct preference optimisation; "
        "ppo: RLHF against a reward run.",
    )
    beta: float = Field(
        0.1, gt=0, description="dpo / ppo: strength of the pull to the reference model (KL)."
    )
    reward_run: str | None = Field(None, description="ppo: the run directory of a reward model.")
    ppo_epochs: int = Field(2, ge=1, description="ppo: optimisation passes per batch of rollouts.")
    clip: float = Field(0.2, gt=0, description="ppo: ratio clip range.")
    temperature: float = Field(1.0, gt=0, description="ppo: sampling temperature of rollouts.")
    template: str = Field(
        "auto",
        description="sft prompt template: chat (the tokenizer's), alpaca, qa, plain, or your own "
        "text with {prompt}; auto: chat when the tokenizer has one, else alpaca.",
    )
    system: str | None = Field(None, description="sft: a system message for chat templates.")
    train_on_prompt: bool = Field(
        False, description="sft: also learn the prompt tokens (default: response tokens only)."
    )
    packing: bool = Field(False, description="sft: pack several examples into each row.")
    refusal: str | None = Field(
        None,
        description="sft: the fixed refusal sentence for off-topic questions (seed 003); "
        "test rows whose reference is this sentence count as off-topic.",
    )
    pooling: Literal["auto", "last_token", "cls", "mean"] = Field(
        "auto",
        description="auto: last non-padding token for decoders (seed 000), CLS for encoders; "
        "mean: average over real tokens (sentence encoders such as MiniLM).",
    )


class TrainConfig(StrictModel):
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(8, ge=1, description="Global batch size (over all processes).")
    grad_accum: int = Field(1, ge=1, description="Batches per optimizer step.")
    micro_batch_tokens: int | None = Field(
        MICRO_BATCH_TOKENS,
        ge=1,
        description="Run a batch over this many padded tokens (rows x length) as micro-batches "
        "of whole rows whose gradients add up to the batch's: the same update, far less memory "
        "and, on CPU, less time for long rows. null: whole batches.",
    )
    lr: float = Field(5e-5, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    max_grad_norm: float | None = Field(1.0, description="Gradient clipping; null turns it off.")
    seed: int = 123
    monitor: Literal["val_loss", "val_accuracy", "val_macro_f1"] = "val_loss"
    early_stopping_patience: int | None = Field(
        None, ge=1, description="Stop after this many epochs without improvement."
    )
    max_minutes: float | None = Field(
        None, gt=0, description="Stop training after this long (then evaluate and save)."
    )
    group_by_length: bool | None = Field(
        None,
        description="Batch rows of similar length: less padding. Default: on, except when the "
        "frozen-block cache trains only the top blocks (padding costs little there, and batches "
        "of one length can be batches of one class: long SMS are spam).",
    )
    log_every: int = Field(10, ge=1, description="Optimizer steps between metrics lines.")
    threads: int | None = Field(None, ge=1, description="CPU threads; default: all cores.")
    cache_frozen: bool = Field(
        True,
        description="head/freeze: compute the frozen lower blocks once and train the top from "
        "their cached output (same result, far less compute per epoch).",
    )
    cache_max_gb: float = Field(4.0, gt=0, description="Largest hidden-state cache kept in memory.")


class EvalConfig(StrictModel):
    batch_size: int = Field(32, ge=1)
    examples: int = Field(5, ge=0, description="Test texts shown before/after in the report.")
    max_new_tokens: int = Field(64, ge=1, description="sft: tokens generated per test answer.")
    generate_limit: int | None = Field(
        200, ge=1, description="sft: test rows answered by generation (all rows get perplexity)."
    )
    general: str | None = Field(
        None,
        description="sft: a general held-out set (instruction format) scored before and after: "
        "what tuning cost (forgetting).",
    )
    general_limit: int = Field(100, ge=1, description="Rows of eval.general used.")


class OutputConfig(StrictModel):
    dir: str | None = Field(None, description="Run directory; default runs/<config file stem>.")


MethodConfig = Annotated[
    Union[tuple(spec.settings for spec in METHODS.values())],  # noqa: UP007 - built at runtime
    Field(discriminator="name"),
]


class RunConfig(StrictModel):
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    task: TaskConfig = TaskConfig()
    method: MethodConfig = Field(default_factory=lambda: METHODS.get("freeze").settings())
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    output: OutputConfig = OutputConfig()


def settings_fields(method_name: str) -> set[str]:
    """The setting names of a registered method (none for an unknown name: validation says so)."""
    try:
        return set(METHODS.get(method_name).settings.model_fields) - {"name"}
    except TunelabError:
        return set()


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set `a.b.c=value` pairs in a nested dict; values are parsed as YAML (2 -> int).

    Choosing another method (`method.name=qlora`) keeps only the settings the new method also
    has (lora's `r` and `target_modules` carry over to qlora; freeze's `k` means nothing to lora)."""
    for item in overrides:
        key, _, value = item.partition("=")
        method = raw.get("method")
        if key == "method.name" and isinstance(method, dict) and method.get("name") != value:
            shared = settings_fields(value)
            raw["method"] = {k: v for k, v in method.items() if k in shared}
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
        node[leaf] = yaml.safe_load(value) if value else None
    return raw


def format_validation_error(error: ValidationError, source: str) -> str:
    """Name the first bad field in one line, the way a user reads it."""
    first = error.errors()[0]
    field = ".".join(str(p) for p in first["loc"] if not str(p).startswith("function-after"))
    problem = first["msg"]
    if first["type"] == "extra_forbidden":
        problem = "unknown key"
    elif first["type"] == "union_tag_invalid":
        problem = f"unknown method '{first['input'].get('name') if isinstance(first['input'], dict) else first['input']}'; known: {', '.join(METHODS.names())}"
    extra = f" ({len(error.errors()) - 1} more)" if len(error.errors()) > 1 else ""
    return f"{source}: {field}: {problem}{extra}"


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise TunelabError(f"config file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise TunelabError(f"{path}:{line} invalid YAML") from None
    if not isinstance(raw, dict):
        raise TunelabError(f"{path}: the config must be a mapping of sections")
    return raw


def validate(raw: dict[str, Any], source: str) -> RunConfig:
    try:
        return RunConfig.model_validate(raw)
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
    return json.dumps(RunConfig.model_json_schema(), indent=2)
