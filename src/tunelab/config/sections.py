"""The sections of a run config (model, data, train, eval, output) and RunConfig, whose task and
method sections config/__init__.py fills with the registered settings classes."""

import importlib.util
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from tunelab.config.distributed import DeepSpeedConfig, FsdpConfig
from tunelab.config.settings import (
    DEFAULT_SECTIONS,
    MethodSettings,
    StrictModel,
    TaskSettings,
)

BUILTIN_SPAM = "builtin:sms_spam"

# Training's default budget (train.micro_batch_tokens), also the cut of forward passes without
# gradients (evaluation, the frozen-block cache): 32 SMS x 200 tokens through SmolLM2 held
# 1,566 MB at the peak in one pass and 1,026 MB as slices of 8 rows, in the same time; on case
# (a) of the benchmarks, slices of 2,048 tokens peaked at 1,429 MB, of 1,024 at 1,279-1,304 MB.
MICRO_BATCH_TOKENS = 1024


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
        description="Training file (csv/tsv/json/jsonl/parquet); for pretrain also a folder of "
        ".txt/.md.",
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
    split_seed: int | None = Field(
        None,
        ge=0,
        le=2**32 - 1,
        description="Seed of the data's choices (balancing, split, sampled rows); null: "
        "train.seed. compare's seeds fix it, so only initialisation, order and dropout vary.",
    )
    mix: list[MixSource] = Field(
        [], description="sft: more training sources mixed in by weight (multitask, FLAN-style)."
    )
    streaming: bool = Field(
        False,
        description="pretrain: tokenize once into memory-mapped Arrow files, cached for the next "
        "run (on by itself above 1 GiB).",
    )
    num_proc: int | None = Field(
        None, ge=1, description="Processes that tokenize a streamed corpus; null: one per core."
    )

    @model_validator(mode="after")
    def _split_sums_to_one(self) -> "DataConfig":
        if abs(sum(self.split) - 1.0) > 1e-6 or min(self.split) < 0:
            raise ValueError(
                f"data.split must be three non-negative fractions summing to 1, got {self.split}"
            )
        return self

    @model_validator(mode="after")
    def _held_out_is_held_out(self) -> "DataConfig":
        """A setting under which the scores would mean nothing (issue 36): the label read as the
        text (test accuracy 1.0). The training file scored as the test file is the doctor's
        leakage finding, not an error: the scope guard's side run does it by design."""
        if self.text_field == self.label_field:
            raise ValueError(
                f"data.text_field and data.label_field are both '{self.text_field}': the model "
                "would read the label it is asked for"
            )
        return self


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
    lr: float = Field(5e-5, gt=0, le=1, description="Peak learning rate (AdamW; above 1 diverges).")
    weight_decay: float = Field(0.1, ge=0)
    scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "linear"
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    max_grad_norm: float | None = Field(
        1.0, gt=0, description="Gradient clipping; null turns it off."
    )
    seed: int = Field(123, ge=0, le=2**32 - 1)  # what NumPy's seeding takes
    monitor: Literal["val_loss", "val_accuracy", "val_macro_f1"] = "val_loss"
    early_stopping_patience: int | None = Field(
        None, ge=1, description="Stop after this many epochs without improvement."
    )
    max_minutes: float | None = Field(
        None, gt=0, description="Stop training after this long (then evaluate and save)."
    )
    max_tokens: int | None = Field(
        None,
        gt=0,
        description="Stop training once this many real (non-padding) tokens were trained on "
        "(then evaluate and save): compare's equal budget.",
    )
    group_by_length: bool | None = Field(
        None,
        description="Batch rows of similar length: less padding. Default: on, except when the "
        "frozen-block cache trains only the top blocks (padding costs little there, and batches "
        "of one length can be batches of one class: long SMS are spam).",
    )
    log_every: int = Field(10, ge=1, description="Optimizer steps between metrics lines.")
    cache_frozen: bool = Field(
        True,
        description="head/freeze: compute the frozen lower blocks once and train the top from "
        "their cached output (same result, far less compute per epoch).",
    )
    cache_max_gb: float = Field(4.0, gt=0, description="Largest hidden-state cache kept in memory.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto",
        description="Mixed precision (autocast); auto: bf16 on a GPU with it, or on a CPU with "
        "native bf16 where a cached probe measured it faster; else fp32.",
    )
    report_to: list[Literal["tensorboard", "mlflow", "wandb"]] = Field(
        default_factory=list,
        description="Trackers that get a copy of metrics.jsonl and the config (docs/scale.md).",
    )
    distributed: Literal["ddp", "fsdp", "deepspeed"] = Field(
        "ddp", description="How --nproc processes share the work (docs/scale.md)."
    )
    fsdp: FsdpConfig = FsdpConfig()
    deepspeed: DeepSpeedConfig = DeepSpeedConfig()

    @field_validator("report_to")
    @classmethod
    def trackers_installed(cls, names: list[str]) -> list[str]:
        missing = [n for n in names if importlib.util.find_spec(n) is None]  # package = name
        if missing:
            raise ValueError(f"{missing[0]} is not installed (pip install {missing[0]})")
        return names


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
    split: Literal["test", "val"] = Field(
        "test",
        description="The split the after-score is measured on. val: the test split is never "
        "read (compare's search tunes on validation only).",
    )
    test_sets: dict[str, str] = Field(
        {},
        description="sft: more held-out question files, by name, each scored on its own like the "
        "test split (e.g. off-topic questions from another source than the training rows).",
    )
    bench: list[str] = Field(
        [],
        description="Standard benchmarks scored before and after training (lm-eval over the "
        "shipped files): quick, all, or names such as arc_easy, hellaswag (docs/bench.md).",
    )
    bench_limit: int | None = Field(
        100, ge=1, description="A seeded sample of this many documents per benchmark (null: all)."
    )
    bench_fewshot: int | None = Field(None, ge=0, description="Examples shown before each one.")


class OutputConfig(StrictModel):
    dir: str | None = Field(None, description="Run directory; default runs/<config file stem>.")


class RunConfig(StrictModel):
    """A whole run. `task` and `method` hold the registered settings class the name picks."""

    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    task: TaskSettings
    method: MethodSettings
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    output: OutputConfig = OutputConfig()

    @model_validator(mode="before")
    @classmethod
    def _default_names(cls, raw: Any) -> Any:
        """A section without `name` is the default task or method (and an absent one too)."""
        if isinstance(raw, dict):
            raw = dict(raw)
            for section, name in DEFAULT_SECTIONS.items():
                value = raw.get(section)
                if value is None:
                    raw[section] = {"name": name}
                elif isinstance(value, dict) and "name" not in value:
                    raw[section] = {"name": name, **value}
        return raw
