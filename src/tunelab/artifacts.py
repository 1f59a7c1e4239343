"""The trained artefact in the run directory (Hugging Face layout) and how to load it back."""

import json
import shutil
from pathlib import Path

from peft import PeftModel
from transformers import (
    AutoModelForSequenceClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from tunelab.errors import TunelabError
from tunelab.models.loader import load_classifier, load_tokenizer
from tunelab.models.mean_pooling import MeanPoolingClassifier, is_mean_pooling_folder

RUN_INFO = "run_info.json"


def save_artifact(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: Path) -> None:
    """`model/` for methods that change base weights, `adapter/` (PEFT) for the others."""
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
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


def load_run(run_dir: str | Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict]:
    """The trained classifier of a run, ready for inference, with its tokenizer and run info."""
    run_dir = Path(run_dir)
    info = read_run_info(run_dir)
    folder = run_dir / info["artifact"]
    tokenizer = load_tokenizer(str(folder))
    if info["artifact"] == "adapter":
        mean = info.get("pooling") == "mean"
        base = load_classifier(info["base_model"], info["labels"], tokenizer, mean_pooling=mean)
        model = PeftModel.from_pretrained(base, folder)
    elif is_mean_pooling_folder(folder):
        model = MeanPoolingClassifier.from_pretrained(folder)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(folder)
    model.eval()
    return model, tokenizer, info
