"""tunelab export: a run's model as a plain Hugging Face folder, LoRA/IA3 merged in on request."""

import shutil
from pathlib import Path

from peft import PeftModel

from tunelab.artifacts import read_run_info
from tunelab.errors import TunelabError
from tunelab.models.loader import load_causal_lm, load_classifier, load_tokenizer

MERGEABLE = {"lora", "qlora", "ia3"}


def merged_if_possible(model, info: dict):
    """LoRA/IA3 folded into the base: the deployed form (unmerged adapters run slower)."""
    return model.merge_and_unload() if info["method"] in MERGEABLE else model


def export_run(run_dir: str | Path, out: str | Path, merge: bool) -> Path:
    """Copy the artefact; with merge, fold the adapter into full-precision base weights."""
    run_dir, out = Path(run_dir), Path(out)
    info = read_run_info(run_dir)
    folder = run_dir / info["artifact"]
    if out.exists():
        raise TunelabError(f"export target {out} exists")
    if not merge:
        shutil.copytree(folder, out)
        return out
    if info["method"] not in MERGEABLE:
        raise TunelabError(
            f"--merge folds LoRA/IA3 weights into the base; method '{info['method']}' has none"
        )
    tokenizer = load_tokenizer(str(folder))
    # The base in full precision, also for qlora: merging into 4-bit weights would round the update away.
    if info.get("model_kind") == "causal_lm":
        base = load_causal_lm(info["base_model"])
    else:
        mean = info.get("pooling") == "mean"
        base = load_classifier(info["base_model"], info["labels"], tokenizer, mean_pooling=mean)
    merged = PeftModel.from_pretrained(base, folder).merge_and_unload()
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
