"""tunelab export: a run's model as a plain Hugging Face folder, LoRA/IA3 merged in on request."""

import shutil
from pathlib import Path

import torch
from peft import PeftModel

from tunelab.artifacts import load_base, loading
from tunelab.errors import TunelabError
from tunelab.methods import METHODS
from tunelab.models.loader import load_tokenizer
from tunelab.run_record import RunRecord, read_record


def check_mergeable(record: RunRecord) -> None:
    """The one place that says whether a run's trained weights fold into its base."""
    if not METHODS.get(record.method).merges:
        mergeable = ", ".join(n for n in METHODS.names() if METHODS.get(n).merges)
        raise TunelabError(
            f"--merge folds adapter weights into the base ({mergeable}); "
            f"method '{record.method}' has none"
        )


def merged_if_possible(model, record: RunRecord):
    """LoRA/IA3 folded into the base: the deployed form (unmerged adapters run slower)."""
    return model.merge_and_unload() if METHODS.get(record.method).merges else model


def full_precision_base(record: RunRecord, tokenizer):
    """The base an adapter merges into, in fp32. A qlora adapter was trained against the
    4-bit weights, so it merges into those weights dequantized, not into the original fp32
    ones (merging into 4-bit weights would round the update away; merging into the original
    weights gave the seed-003 assistant 0.60 key facts instead of its 0.76)."""
    base = load_base(record, tokenizer)
    if getattr(base, "is_quantized", False):
        base = base.dequantize(dtype=torch.float32)
    return base.float()


def export_run(run_dir: str | Path, out: str | Path, merge: bool) -> Path:
    """Copy the artefact; with merge, fold the adapter into full-precision base weights."""
    run_dir, out = Path(run_dir), Path(out)
    record = read_record(run_dir)
    folder = run_dir / record.artifact
    if out.exists():
        raise TunelabError(f"export target {out} exists")
    if not merge:
        shutil.copytree(folder, out)
        return out
    check_mergeable(record)
    with loading(run_dir):
        tokenizer = load_tokenizer(str(folder))
        merged = PeftModel.from_pretrained(full_precision_base(record, tokenizer), folder)
    merged = merged.merge_and_unload()
    merged.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
