"""The trained artefact in the run directory (Hugging Face layout) and how to load it back."""

import hashlib
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from peft import PeftModel
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from tunelab.errors import TunelabError
from tunelab.files import write_whole
from tunelab.methods import METHODS
from tunelab.models.anatomy import describe
from tunelab.models.loader import load_causal_lm, load_classifier, load_tokenizer
from tunelab.models.mean_pooling import MeanPoolingClassifier, is_mean_pooling_folder
from tunelab.models.prompt_classifier import PromptClassifier
from tunelab.models.trainable import load_trainable_state, trainable_state
from tunelab.run_record import RunRecord, read_record

# what loading a run's files raises when they are damaged: a truncated safetensors file, a
# corrupt JSON config, a tokenizer file missing, labels that do not fit the head, a vocabulary
# that does not fit the weights
LOAD_ERRORS = (OSError, ValueError, RuntimeError, KeyError, SafetensorError)


CHECKSUMS = "checksums.json"  # each saved file's SHA-256, written when the run finished
ARTIFACT_FOLDERS = ("model", "adapter", "trainable", "prompt")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksums(folder: Path) -> None:
    """Safetensors and JSON check their own shape, not their numbers: a byte flipped inside a
    tensor would load as another weight without a word. The checksums make it one line."""
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and p.name != CHECKSUMS]
    sums = {p.name: file_sha256(p) for p in files}
    write_whole(folder / CHECKSUMS, json.dumps(sums, indent=2))


def check_checksums(run_dir: Path) -> None:
    """Every saved file of the run's artefact as it was written (runs saved before checksums
    were written are not checked)."""
    for name in ARTIFACT_FOLDERS:
        listing = run_dir / name / CHECKSUMS
        if not listing.is_file():
            continue
        for file, expected in json.loads(listing.read_text()).items():
            path = run_dir / name / file
            if not path.is_file() or file_sha256(path) != expected:
                raise TunelabError(
                    f"{run_dir}: its files cannot be loaded ({name}/{file} is not the file the "
                    "run saved: missing, or its SHA-256 differs); damaged? train the run again"
                )


@contextmanager
def loading(run_dir: Path) -> Iterator[None]:
    """Loading a finished run's files: damage is one line naming the run, not a traceback."""
    try:
        check_checksums(Path(run_dir))
        yield
    except TunelabError:
        raise
    except LOAD_ERRORS as exc:
        lines = str(exc).strip().splitlines()
        reason = lines[0][:300] if lines else type(exc).__name__
        raise TunelabError(
            f"{run_dir}: its files cannot be loaded ({type(exc).__name__}: {reason}); damaged "
            "or truncated? train the run again"
        ) from None


TRAINABLE_FILE = "trainable.safetensors"
PROMPT_FILE = "prompt.json"


def save_artifact(model, tokenizer: PreTrainedTokenizerBase, folder: Path, kind: str) -> None:
    """`model/` (full weights), `adapter/` (PEFT) or `trainable/` (our own adapter modules)."""
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    if kind == "trainable":
        staging.mkdir(parents=True)
        save_file(trainable_state(model), staging / TRAINABLE_FILE)
    elif kind == "prompt":
        staging.mkdir(parents=True)
        # A generative run's shots live in run_info.json; the model itself is untouched.
        prompt = {
            "description": getattr(model, "description", None),
            "shots": getattr(model, "shots", []),
        }
        (staging / PROMPT_FILE).write_text(json.dumps(prompt, indent=2))
    else:
        model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    write_checksums(staging)
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)


def method_of(record: RunRecord):
    spec = METHODS.get(record.method)
    return spec, spec.settings(**record.method_settings)


def load_base(record: RunRecord, tokenizer: PreTrainedTokenizerBase, quantized: bool = True):
    """The base model as the run loaded it (quantized for qlora unless `quantized` is off),
    with a fresh head for a classifier."""
    spec, settings = method_of(record)
    options = spec.options(settings) if quantized else {}
    if record.model_kind == "causal_lm":
        return load_causal_lm(record.base_model, **options)
    mean = record.pooling == "mean"
    return load_classifier(
        record.base_model, record.labels, tokenizer, mean_pooling=mean, **options
    )


def load_trainable(folder: Path, record: RunRecord, tokenizer: PreTrainedTokenizerBase):
    """Base model + the method re-applied + the trained tensors."""
    model = load_base(record, tokenizer)
    spec, settings = method_of(record)
    model = spec.apply(model, settings, describe(model))
    load_trainable_state(model, load_file(folder / TRAINABLE_FILE))
    return model


def load_model_folder(folder: Path, record: RunRecord, tokenizer: PreTrainedTokenizerBase):
    """The model of a run whose artefact is a whole model, or a prompt for the base model."""
    if record.model_kind == "causal_lm":
        if record.artifact == "model":
            return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        return load_base(record, tokenizer)  # prompting: the untouched base model
    if record.artifact == "prompt":
        lm = AutoModelForCausalLM.from_pretrained(record.base_model, dtype=torch.float32)
        prompt = json.loads((folder / PROMPT_FILE).read_text())
        shots = [tuple(shot) for shot in prompt["shots"]]
        return PromptClassifier(lm, tokenizer, record.labels, prompt["description"], shots)
    if is_mean_pooling_folder(folder):
        return MeanPoolingClassifier.from_pretrained(folder)
    return AutoModelForSequenceClassification.from_pretrained(folder)


def load_run(
    run_dir: str | Path,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, RunRecord]:
    """The one loader of a finished run: its model (classifier or causal LM) ready for
    inference, its tokenizer, and its run record."""
    run_dir = Path(run_dir)
    record = read_record(run_dir)
    folder = run_dir / record.artifact
    with loading(run_dir):
        tokenizer = load_tokenizer(str(folder))
        tokenizer.padding_side = record.padding_side
        if record.artifact == "adapter":
            model = PeftModel.from_pretrained(load_base(record, tokenizer), folder)
        elif record.artifact == "trainable":
            model = load_trainable(folder, record, tokenizer)
        else:
            model = load_model_folder(folder, record, tokenizer)
    model.eval()
    return model, tokenizer, record
