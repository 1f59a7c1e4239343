"""pipeline.run(config): config -> data -> model + method -> train -> evaluate -> report.

The CLI calls this and adds nothing of its own."""

import time
from pathlib import Path

import numpy as np
from accelerate.utils import set_seed
from transformers import DataCollatorWithPadding

from tunelab.artifacts import save_artifact, write_run_info
from tunelab.config import RunConfig, save_config
from tunelab.data.encode import encode_rows, label_counts
from tunelab.data.prepare import Splits, prepare_splits
from tunelab.errors import TunelabError
from tunelab.evaluate import evaluate, predict
from tunelab.methods import METHODS
from tunelab.models.anatomy import describe
from tunelab.models.embedded import resolve_model
from tunelab.models.loader import load_classifier, load_tokenizer
from tunelab.report import write_report
from tunelab.run_common import base_summary, prepare_run_dir, write_json
from tunelab.tasks import TASKS
from tunelab.tasks.classify import check_pooling
from tunelab.train.frozen_cache import cacheable, estimated_bytes, frozen_prefix_cached
from tunelab.train.loop import FitState, Trainer, make_accelerator


def encode_splits(splits: Splits, tokenizer, config: RunConfig) -> tuple[dict, dict]:
    """Token ids per split, and the data summary (rows, labels, what was cut or dropped)."""
    label_ids = {label: i for i, label in enumerate(splits.labels)}
    data = config.data
    encoded, summary = {}, {"labels": splits.labels, **splits.notes, "splits": {}}
    for name, rows in splits.items():
        result = encode_rows(
            rows, tokenizer, label_ids, data.max_length, data.overlong, data.truncation_side
        )
        encoded[name] = result.examples
        summary["splits"][name] = {
            "rows": len(result.examples),
            "labels": label_counts(result.examples, splits.labels),
            "truncated_overlong": result.truncated,
            "dropped_overlong": result.dropped,
        }
        if not result.examples:
            raise TunelabError(f"the {name} split is empty after the max_length policy")
    summary["max_length"], summary["overlong"] = data.max_length, data.overlong
    return encoded, summary


def pick_examples(rows, count: int) -> list[int]:
    """Indices of `count` test rows, taking the labels in turn so every class shows."""
    by_label: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_label.setdefault(row.label, []).append(i)
    queues, picked = [list(v) for _, v in sorted(by_label.items())], []
    while len(picked) < min(count, len(rows)):
        for queue in queues:
            if queue and len(picked) < count:
                picked.append(queue.pop(0))
    return picked


def example_predictions(model, tokenizer, encoded, rows, picked, labels) -> list[dict]:
    probs, _ = predict(model, [encoded[i] for i in picked], tokenizer, batch_size=len(picked) or 1)
    return [
        {
            "text": rows[i].text,
            "label": rows[i].label,
            "predicted": labels[int(np.argmax(p))],
            "probs": {label: float(x) for label, x in zip(labels, p, strict=True)},
        }
        for i, p in zip(picked, probs, strict=True)
    ]


def load_model(spec, config: RunConfig, model_path: str, splits: Splits, tokenizer):
    """A pretrained model with a new head, or (prompting methods) the whole prompted classifier."""
    if spec.build:
        seed = config.train.seed
        return spec.build(model_path, splits.labels, tokenizer, config.method, splits.train, seed)
    mean = config.task.pooling == "mean"
    options = spec.options(config.method)
    trust = config.model.trust_remote_code
    model = load_classifier(model_path, splits.labels, tokenizer, trust, mean, **options)
    check_pooling(config.task.pooling, describe(model).is_encoder)
    return model


def evaluate_on_test(model, task, encoded, splits: Splits, picked, tokenizer, config, accelerator):
    result = evaluate(
        model, task, encoded["test"], splits.labels, tokenizer, config.eval.batch_size, accelerator
    )
    result["examples"] = example_predictions(
        model, tokenizer, encoded["test"], splits.test, picked, splits.labels
    )
    return result


def train_model(
    spec, model, task, tokenizer, config, accelerator, run_dir, encoded, labels, resume
):
    """Apply the method and fit; prompting methods train nothing. When the method leaves the
    embeddings and lower blocks frozen (head, freeze), they run once and are cached."""
    if spec.apply is None:
        return model, FitState()
    model = spec.apply(model, config.method, describe(model))
    batch = config.eval.batch_size

    def fit(train, val, cached: bool = False) -> FitState:
        def validate(model):
            return evaluate(model, task, val, labels, tokenizer, batch, accelerator)

        train_config = config.train  # unset group_by_length means on (the loop's default)...
        if cached and train_config.group_by_length is None:  # ...but random batches when cached
            train_config = train_config.model_copy(update={"group_by_length": False})
        trainer = Trainer(model, task, tokenizer, train_config, accelerator, run_dir, validate)
        return trainer.fit(train, resume)

    train, val = encoded["train"], encoded["val"]
    if not (config.train.cache_frozen and cacheable(model)):
        return model, fit(train, val)
    limit = config.train.cache_max_gb
    if estimated_bytes(train + val, model.config.hidden_size) > limit * 2**30:
        print(f"the hidden-state cache would exceed train.cache_max_gb={limit}; not caching")
        return model, fit(train, val)
    # Rows carry their place in the cache; the frozen blocks run once, here.
    train = [{**row, "cache_index": i} for i, row in enumerate(train)]
    val = [{**row, "cache_index": len(train) + i} for i, row in enumerate(val)]
    started = time.perf_counter()
    with frozen_prefix_cached(model, train + val, DataCollatorWithPadding(tokenizer), batch):
        cache_seconds = time.perf_counter() - started
        state = fit(train, val, cached=True)
    state.seconds += cache_seconds  # the one pass through the frozen blocks is training time
    state.cache_seconds = cache_seconds
    return model, state


def run_summary(spec, task, config, model, state: FitState, started, accelerator, before, after):
    return {
        **base_summary(spec, task, config, model, state, started, accelerator.num_processes),
        "score_name": "test_accuracy",
        "score_before": before["accuracy"],
        "score": after["accuracy"],
        "cache_seconds": state.cache_seconds,
        "test_accuracy_before": before["accuracy"],
        "test_accuracy_after": after["accuracy"],
        "test_macro_f1_after": after["macro_f1"],
    }


def run_info(spec, task, config, model_path, labels, tokenizer) -> dict:
    """What `load_run` needs to rebuild the model (run_info.json)."""
    return {
        "base_model": model_path,
        "model": config.model.name,
        "labels": labels,
        "method": spec.name,
        "task": task.name,
        "artifact": spec.artifact,
        "max_length": config.data.max_length,
        "truncation_side": config.data.truncation_side,
        "pooling": config.task.pooling,
        "padding_side": tokenizer.padding_side,
        "method_settings": config.method.model_dump(),
    }


def run(config: RunConfig, resume: bool = False) -> dict:
    """Train and evaluate one run; everything lands in config.output.dir."""
    task, spec = TASKS.get(config.task.name), METHODS.get(config.method.name)
    if spec.name not in task.methods:
        raise TunelabError(f"method '{spec.name}' does not support task '{task.name}'")
    if task.name == "ppo":
        from tunelab.pipeline_ppo import run_ppo  # our own PPO: TRL 1.x has none

        return run_ppo(config, task, spec, resume)
    if task.model_kind == "preference":
        from tunelab.pipeline_pref import run_preference  # TRL's trainers behind a bridge

        return run_preference(config, task, spec, resume)
    if task.model_kind == "causal_lm":
        from tunelab.pipeline_lm import run_causal_lm  # the generative stages

        return run_causal_lm(config, task, spec, resume)
    return run_classifier(config, task, spec, resume)


def run_classifier(config: RunConfig, task, spec, resume: bool) -> dict:
    run_dir = Path(config.output.dir)
    accelerator = make_accelerator(config.train)
    main = accelerator.is_main_process
    prepare_run_dir(run_dir, resume)
    set_seed(config.train.seed)
    splits = prepare_splits(config.data, config.train.seed)
    if main:
        resolve_model(config.model.name)  # the main process converts an embedded model once
    accelerator.wait_for_everyone()
    model_path = resolve_model(config.model.name)
    tokenizer = load_tokenizer(model_path, config.model.trust_remote_code)
    if spec.left_padding:
        tokenizer.padding_side = "left"  # harmless for encoders, needed for decoders
    encoded, data_summary = encode_splits(splits, tokenizer, config)
    model = load_model(spec, config, model_path, splits, tokenizer)
    if main:
        save_config(config, run_dir / "config.yaml")
        write_json(run_dir / "data_summary.json", data_summary)

    picked = pick_examples(splits.test, config.eval.examples)
    before = evaluate_on_test(model, task, encoded, splits, picked, tokenizer, config, accelerator)
    started = time.perf_counter()
    model, state = train_model(
        spec, model, task, tokenizer, config, accelerator, run_dir, encoded, splits.labels, resume
    )
    trained = spec.apply is not None
    after = (
        evaluate_on_test(model, task, encoded, splits, picked, tokenizer, config, accelerator)
        if trained
        else before
    )
    summary = run_summary(spec, task, config, model, state, started, accelerator, before, after)
    if main:
        write_json(run_dir / "eval_before.json", before)
        write_json(run_dir / "eval_after.json", after)
        write_json(run_dir / "train_summary.json", summary)
        save_artifact(
            accelerator.unwrap_model(model), tokenizer, run_dir / spec.artifact, spec.artifact
        )
        write_run_info(run_dir, run_info(spec, task, config, model_path, splits.labels, tokenizer))
        write_report(run_dir)
    accelerator.wait_for_everyone()
    return summary
