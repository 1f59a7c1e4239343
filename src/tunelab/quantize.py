"""tunelab quantize: size, speed and accuracy of a run's model at INT8 (torch dynamic) and 4-bit
(bitsandbytes NF4) against full precision, on the run's own test split."""

import io
import json
import time
from pathlib import Path

import torch
from peft import PeftModel
from torch import nn

from tunelab.artifacts import load_run, read_run_info
from tunelab.config import load_config
from tunelab.data.encode import encode_rows
from tunelab.data.prepare import prepare_splits
from tunelab.errors import TunelabError
from tunelab.evaluate import evaluate
from tunelab.export import merged_if_possible
from tunelab.models.loader import load_classifier
from tunelab.tasks import TASKS

HEADS = ("score", "classifier", "pre_classifier", "head")


def to_int8(model: nn.Module) -> nn.Module:
    """Dynamic INT8: Linear weights stored in int8, activations quantized on the fly (CPU).
    The classification head is tiny and decides the label: it stays in fp32."""
    body = {
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and name.split(".")[-1] not in HEADS
    }
    return torch.ao.quantization.quantize_dynamic(model, body, dtype=torch.qint8)


def state_mb(model: nn.Module) -> float:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell() / 2**20


def four_bit(run_dir: Path, info: dict, tokenizer) -> nn.Module:
    """The run's model with every base Linear in NF4; heads and adapters stay in full precision."""
    from transformers import BitsAndBytesConfig

    if info["artifact"] not in ("model", "adapter"):
        raise TunelabError(
            f"4-bit loading supports full models and PEFT adapters, not '{info['artifact']}'"
        )
    config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=torch.float32,
        llm_int8_skip_modules=["score", "classifier", "pre_classifier"],
    )
    source = info["base_model"] if info["artifact"] == "adapter" else str(run_dir / "model")
    model = load_classifier(source, info["labels"], tokenizer, quantization_config=config)
    if info["artifact"] == "adapter":
        model = PeftModel.from_pretrained(model, run_dir / "adapter")
    return model.eval()


def measure(name: str, model: nn.Module, task, examples, labels, tokenizer, size_mb: float) -> dict:
    started = time.perf_counter()
    metrics = evaluate(model, task, examples, labels, tokenizer, batch_size=32)
    seconds = time.perf_counter() - started
    return {
        "variant": name,
        "accuracy": metrics["accuracy"],
        "macro_f1": metrics["macro_f1"],
        "size_mb": size_mb,
        "eval_seconds": seconds,
        "rows_per_s": len(examples) / seconds,
    }


def quantize_run(run_dir: str | Path, int8: bool = True, nf4: bool = False, echo=print) -> dict:
    run_dir = Path(run_dir)
    if read_run_info(run_dir).get("model_kind") == "causal_lm":
        # Measuring a generative run needs generation-time figures; not built yet.
        raise TunelabError("quantize measures classification runs; this is a generative run")
    model, tokenizer, info = load_run(run_dir)
    model = merged_if_possible(model, info)
    config = load_config(run_dir / "config.yaml")
    splits = prepare_splits(config.data, config.train.seed)
    label_ids = {label: i for i, label in enumerate(info["labels"])}
    examples = encode_rows(
        splits.test, tokenizer, label_ids, info["max_length"], "truncate", info["truncation_side"]
    ).examples
    task, labels = TASKS.get(info["task"]), info["labels"]
    rows = [measure("fp32", model, task, examples, labels, tokenizer, state_mb(model))]
    if int8:
        quantized = to_int8(model)
        rows.append(
            measure("int8", quantized, task, examples, labels, tokenizer, state_mb(quantized))
        )
    if nf4:
        small = four_bit(run_dir, info, tokenizer)
        rows.append(
            measure(
                "nf4",
                small,
                task,
                examples,
                labels,
                tokenizer,
                small.get_memory_footprint() / 2**20,
            )
        )
    base = rows[0]
    for row in rows:
        row["size_ratio"] = row["size_mb"] / base["size_mb"]
        row["speedup"] = row["rows_per_s"] / base["rows_per_s"]
        row["accuracy_delta"] = row["accuracy"] - base["accuracy"]
    result = {"test_rows": len(examples), "variants": rows}
    (run_dir / "quantize.json").write_text(json.dumps(result, indent=2))
    return result
