"""The run record (run_info.json): what a finished run holds and how to load it back.

One writer (pipeline.run, at the end of a run) and one reader (`read_record`), used by every
command that opens a run directory: eval, predict, generate, chat, export, quantize, report,
compare, and a PPO run that starts from an sft run or scores with a reward run."""

import hashlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from tunelab.errors import TunelabError
from tunelab.files import write_whole

RUN_INFO = "run_info.json"

# classifier: a sequence-classification model (a new head, or a reward model's one output);
# causal_lm: the model's own LM head (sft, pretrain, dpo, kto, ppo).
ModelKind = Literal["classifier", "causal_lm"]


class RunRecord(BaseModel):
    """Everything a later command needs to rebuild a run's model and use it as it was trained."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str
    method: str
    model: str  # model.name as configured
    base_model: str  # the folder the run started from (absolute), or a Hub id
    base_fingerprint: str | None = None  # base_fingerprint() of that folder at training
    model_kind: ModelKind
    artifact: Literal["model", "adapter", "trainable", "prompt"]
    method_settings: dict[str, Any]
    task_settings: dict[str, Any]
    max_length: int
    truncation_side: Literal["left", "right"] = "right"
    padding_side: Literal["left", "right"] = "right"
    labels: list[str] = []  # classifier: the class names in head order
    pooling: str = "auto"
    template: str | None = None  # the prompt template that was resolved (chat, alpaca, ...)
    system: str | None = None
    shots: list[dict] = []  # few-shot turns put before every question
    max_new_tokens: int = 64

    @property
    def answers_questions(self) -> bool:
        """A generative run with a prompt template: generate, chat and serve can use it."""
        return self.model_kind == "causal_lm" and self.template is not None

    @property
    def abilities(self) -> list[str]:
        """What the run can be asked, from what it is (never from its task's name): `chat`
        (sft, dpo, kto, orpo, grpo, rloo, ppo), `classify` (a head with class names) or `score`
        (a one-output head: a reward model, whose one "label" is its score). The UI and the
        server ask this."""
        if self.answers_questions:
            return ["chat"]
        if self.model_kind == "classifier":
            return ["classify"] if len(self.labels) >= 2 else ["score"]
        return []


def write_record(run_dir: Path, record: RunRecord) -> None:
    """The run's finish mark, so written whole or not at all (beside it, then renamed)."""
    write_whole(Path(run_dir) / RUN_INFO, record.model_dump_json(indent=2))


def is_finished(run_dir: str | Path) -> bool:
    return (Path(run_dir) / RUN_INFO).is_file()


def read_record(run_dir: str | Path) -> RunRecord:
    """The run record of a finished run, or a one-line error saying why there is none."""
    path = Path(run_dir) / RUN_INFO
    if not path.is_file():
        raise TunelabError(f"{run_dir} is not a finished tunelab run (no {RUN_INFO})")
    try:
        record = RunRecord.model_validate_json(path.read_text())
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "the file"
        raise TunelabError(
            f"{path}: field '{field}': {first['msg']} (written by another tunelab version, or "
            "damaged? train the run again)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TunelabError(f"{path}: unreadable ({exc})") from None
    check_run_files(Path(run_dir), record)
    return record


def is_local_path(name: str) -> bool:
    """A folder, not a Hub id (`org/name`): absolute, relative with ./.., or deeper than one /."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1


# what tells one model folder from another without reading its weights: the model's config,
# tokenizer files and the size of each weights file
FINGERPRINTED = ("config.json", "tokenizer.json", "tokenizer_config.json", "tokenizer.model")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


def base_fingerprint(folder: str | Path) -> str | None:
    """A digest of a local model folder (None for a Hub id): a run refuses a base folder that
    holds another model at the same path, instead of answering with it."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.name in FINGERPRINTED and path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        elif path.suffix in WEIGHT_SUFFIXES and path.is_file():
            digest.update(f"{path.name}\0{path.stat().st_size}".encode())
    return digest.hexdigest()[:16]


def check_run_files(run_dir: Path, record: RunRecord) -> None:
    """The files a finished run is loaded from, checked before any command starts its work."""
    artifact = run_dir / record.artifact
    if not artifact.is_dir() or not any(artifact.iterdir()):
        raise TunelabError(
            f"{run_dir}: its {record.artifact}/ folder is missing or empty; the run is "
            "incomplete (train it again with --overwrite)"
        )
    base = record.base_model
    if record.artifact == "model":
        return  # the run holds its whole model
    if is_local_path(base) and not Path(base).is_dir():
        raise TunelabError(
            f"{run_dir}: the base model it was trained from, {record.base_model}, is gone"
        )
    if record.base_fingerprint and base_fingerprint(base) != record.base_fingerprint:
        raise TunelabError(
            f"{run_dir}: {base} no longer holds the base model the run was trained from (its "
            "config, tokenizer or weights differ); put that model back there"
        )
