"""The trained artefact in the run directory (Hugging Face layout) and how to load it back."""

import json
import shutil
from pathlib import Path

import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from tunelab.errors import TunelabError
from tunelab.methods import METHODS
from tunelab.models.anatomy import describe
from tunelab.models.loader import load_causal_lm, load_classifier, load_tokenizer
from tunelab.models.mean_pooling import MeanPoolingClassifier, is_mean_pooling_folder
from tunelab.models.prompt_classifier import PromptClassifier
from tunelab.train.checkpoint import load_trainable_state, trainable_state

RUN_INFO = "run_info.json"
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
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)


def write_run_info(run_dir: Path, info: dict) -> None:
    (run_dir / RUN_INFO).write_text(json.dumps(info, indent=2))


def read_run_info(run_dir: Path) -> dict:
    path = Path(run_dir) / RUN_INFO
    if not path.is_file():
        raise TunelabError(f"{run_dir} is not a finished tunelab run (no {RUN_INFO})")
    return json.loads(path.read_text())


def method_of(info: dict):
    spec = METHODS.get(info["method"])
    return spec, spec.settings(**info["method_settings"])


def load_base(info: dict, tokenizer: PreTrainedTokenizerBase):
    """The base model as the run loaded it (quantized for qlora), with a fresh head."""
    spec, settings = method_of(info)
    if info.get("model_kind") == "causal_lm":
        return load_causal_lm(info["base_model"], **spec.options(settings))
    mean = info.get("pooling") == "mean"
    return load_classifier(
        info["base_model"], info["labels"], tokenizer, mean_pooling=mean, **spec.options(settings)
    )


def load_trainable(folder: Path, info: dict, tokenizer: PreTrainedTokenizerBase):
    """Base model + the method re-applied + the trained tensors."""
    model = load_base(info, tokenizer)
    spec, settings = method_of(info)
    model = spec.apply(model, settings, describe(model))
    load_trainable_state(model, load_file(folder / TRAINABLE_FILE))
    return model


def load_run(run_dir: str | Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict]:
    """The trained model of a run (classifier or causal LM), ready for inference, with its
    tokenizer and run info."""
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    folder = run_dir / info["artifact"]
    tokenizer = load_tokenizer(str(folder))
    tokenizer.padding_side = info.get("padding_side", tokenizer.padding_side)
    if info["artifact"] == "adapter":
        model = PeftModel.from_pretrained(load_base(info, tokenizer), folder)
    elif info["artifact"] == "trainable":
        model = load_trainable(folder, info, tokenizer)
    elif info.get("model_kind") == "causal_lm":
        model = (
            AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
            if info["artifact"] == "model"
            else load_base(info, tokenizer)  # prompting: the untouched base model
        )
    elif info["artifact"] == "prompt":
        lm = AutoModelForCausalLM.from_pretrained(info["base_model"], dtype=torch.float32)
        prompt = json.loads((folder / PROMPT_FILE).read_text())
        shots = [tuple(shot) for shot in prompt["shots"]]
        model = PromptClassifier(lm, tokenizer, info["labels"], prompt["description"], shots)
    elif is_mean_pooling_folder(folder):
        model = MeanPoolingClassifier.from_pretrained(folder)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(folder)
    model.eval()
    return model, tokenizer, info
