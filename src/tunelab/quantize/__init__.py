"""tunelab quantize: size, speed and score of a run's model at INT8 (torch dynamic) and 4-bit
(bitsandbytes NF4) against full precision, on the run's own test split (prepared by the run's
task, as training prepared it)."""

import copy
import io
import time
from pathlib import Path

import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file
from torch import nn

from tunelab.artifacts import load_run, loading
from tunelab.errors import TunelabError
from tunelab.export.hf import merged_if_possible
from tunelab.hardware import write_measurement
from tunelab.models.loader import load_classifier
from tunelab.pipeline import load_config, open_task
from tunelab.quantize.smoothing import (
    ALPHAS,
    activation_peaks,
    apply_smoothing,
    mean_kl,
    smooth_groups,
    smoothing_scales,
)
from tunelab.run_record import RunRecord, read_record
from tunelab.tasks import TASKS, Task

# The new heads of tunelab's classifiers by module name (Transformers' score / classifier /
# pre_classifier, the mean-pooling classifier's head): kept in full precision by INT8 and by the
# 4-bit load, which must name them before the model exists.
HEADS = ("score", "classifier", "pre_classifier", "head")
CALIBRATION_ROWS = 128
SMOOTHING_FILE = "int8_smoothing.safetensors"


def to_int8(model: nn.Module) -> nn.Module:
    """Dynamic INT8: Linear weights stored in int8 with one scale per output channel,
    activations quantized on the fly (CPU). The classification head stays in fp32 (tiny, and it
    decides the label). Llama-style models are smoothed first (`smoothing.py`): on the seed-000
    spam run (SmolLM2-135M, 298 test SMS, fp32 0.9933) everything in int8 without smoothing
    gave 0.9564, per-channel scales alone 0.9295, smoothed 0.9866 (docs/serve.md)."""
    per_channel = torch.ao.quantization.per_channel_dynamic_qconfig
    body = {
        name: per_channel
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and name.split(".")[-1] not in HEADS
    }
    return torch.ao.quantization.quantize_dynamic(model, body, dtype=torch.qint8)


def smoothed_int8(model: nn.Module, task: Task) -> tuple[nn.Module, dict]:
    """INT8 after smoothing calibrated on the first training rows; of the alphas tried, the one
    whose validation probabilities stay closest to full precision (KL) is kept: the test split
    is never looked at."""
    groups = smooth_groups(model)
    if not groups:
        return to_int8(model), {}
    peaks = activation_peaks(
        model, groups, lambda m: task.split_probabilities(m, "train", CALIBRATION_ROWS)
    )
    split = "val" if task.encoded["val"] else "train"
    reference = task.split_probabilities(model, split, CALIBRATION_ROWS)
    best: dict = {}
    for alpha in ALPHAS:
        scales = smoothing_scales(groups, peaks, alpha)
        candidate = copy.deepcopy(model)
        apply_smoothing(candidate, scales)
        candidate = to_int8(candidate)
        kl = mean_kl(reference, task.split_probabilities(candidate, split, CALIBRATION_ROWS))
        if not best or kl < best["kl"]:
            best = {"kl": kl, "alpha": alpha, "model": candidate, "scales": scales}
    return best.pop("model"), best


def save_smoothing(run_dir: Path, chosen: dict) -> None:
    scales = {key: value.contiguous() for key, value in chosen["scales"].items()}
    save_file(scales, run_dir / SMOOTHING_FILE, metadata={"alpha": str(chosen["alpha"])})


def run_int8(run_dir: Path, model: nn.Module) -> nn.Module:
    """The INT8 model `tunelab quantize` measured, from its saved smoothing scales."""
    if smooth_groups(model):
        path = run_dir / SMOOTHING_FILE
        if not path.is_file():
            raise TunelabError(
                f"{run_dir}: no INT8 calibration ({SMOOTHING_FILE}); "
                f"run `tunelab quantize {run_dir}` first"
            )
        apply_smoothing(model, load_file(path))
    return to_int8(model)


def state_mb(model: nn.Module) -> float:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell() / 2**20


def four_bit(run_dir: Path, record: RunRecord, tokenizer) -> nn.Module:
    """The run's model with every base Linear in NF4; heads and adapters stay in full precision."""
    from transformers import BitsAndBytesConfig

    if record.artifact not in ("model", "adapter"):
        raise TunelabError(
            f"4-bit loading supports full models and PEFT adapters, not '{record.artifact}'"
        )
    config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=torch.float32,
        llm_int8_skip_modules=list(HEADS),
    )
    source = record.base_model if record.artifact == "adapter" else str(run_dir / "model")
    with loading(run_dir):
        model = load_classifier(source, record.labels, tokenizer, quantization_config=config)
        if record.artifact == "adapter":
            model = PeftModel.from_pretrained(model, run_dir / "adapter")
    return model.eval()


def measure(name: str, model: nn.Module, task: Task, size_mb: float) -> dict:
    started = time.perf_counter()
    metrics = task.evaluate(model)
    seconds = time.perf_counter() - started
    return {
        "variant": name,
        "score_name": task.score.name,
        "score": metrics[task.score.field],
        "rows": metrics["n"],
        "size_mb": size_mb,
        "eval_seconds": seconds,
        "rows_per_s": metrics["n"] / seconds,
    }


def quantize_run(run_dir: str | Path, int8: bool = True, nf4: bool = False) -> dict:
    run_dir = Path(run_dir)
    record = read_record(run_dir)
    if not TASKS.get(record.task).quantizable:
        raise TunelabError(f"quantize measures classify runs; {run_dir} is a {record.task} run")
    if not (run_dir / "eval_after.json").is_file():
        raise TunelabError(f"{run_dir}: no eval_after.json; the run did not finish its evaluation")
    task = open_task(load_config(run_dir / "config.yaml", [f"output.dir={run_dir}"]))
    task.prepare()
    model, tokenizer, _ = load_run(run_dir)
    model = merged_if_possible(model, record)
    rows = [measure("fp32", model, task, state_mb(model))]
    if int8:
        quantized, chosen = smoothed_int8(model, task)
        rows.append(measure("int8", quantized, task, state_mb(quantized)))
        rows[-1]["smoothing_alpha"] = chosen.get("alpha")
        if chosen:
            save_smoothing(run_dir, chosen)
    if nf4:
        small = four_bit(run_dir, record, tokenizer)
        rows.append(measure("nf4", small, task, small.get_memory_footprint() / 2**20))
    base = rows[0]
    for row in rows:
        row["size_ratio"] = row["size_mb"] / base["size_mb"]
        row["speedup"] = row["rows_per_s"] / base["rows_per_s"]
        row["score_delta"] = row["score"] - base["score"]
    result = {"test_rows": base["rows"], "variants": rows}
    write_measurement(run_dir / "quantize.json", result)
    return result
