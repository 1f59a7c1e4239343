"""The generative tasks' stages (sft, pretrain): data -> causal LM + method -> train ->
perplexity and answer scores before/after (plus the general set: forgetting) -> report."""

import random
import time
from pathlib import Path

from accelerate.utils import set_seed

from tunelab.artifacts import save_artifact, write_run_info
from tunelab.config import RunConfig, save_config
from tunelab.data.conversations import read_examples
from tunelab.data.lm_encode import lm_collator
from tunelab.data.lm_prepare import LmData, encode_examples, prepare_pretrain, prepare_sft
from tunelab.evaluate_lm import evaluate_answers, perplexity, pick_rows
from tunelab.models.anatomy import describe
from tunelab.models.loader import load_causal_lm, load_tokenizer
from tunelab.report import write_report
from tunelab.run_common import base_summary, prepare_run_dir, start_model, write_json
from tunelab.train.loop import FitState, Trainer, make_accelerator

# The figures that sum a generative run up, in the order the report and leaderboard show them.
SCORES = ("key_fact_hit_rate", "rouge_l", "refusal_rate", "false_refusal_rate", "perplexity")


def prepare_data(config: RunConfig, tokenizer) -> LmData:
    if config.task.name == "pretrain":
        return prepare_pretrain(config.data, tokenizer, config.train.seed)
    return prepare_sft(config.data, config.task, tokenizer, config.train.seed)


def prepare_general(config: RunConfig, tokenizer, template: str | None):
    """The general held-out set (eval.general): its questions and encoded references."""
    if not config.eval.general or template is None:
        return None
    rows = read_examples(config.eval.general)
    rows = random.Random(config.train.seed).sample(rows, min(len(rows), config.eval.general_limit))
    encoded = encode_examples(rows, tokenizer, config.task, template, config.data).examples
    return rows, encoded


def few_shot_messages(spec, config: RunConfig, data: LmData) -> list[dict]:
    """Prompting baselines: k seeded training conversations shown before each question."""
    shots = getattr(config.method, "shots", 0) if spec.apply is None else 0
    train = data.examples.get("train", [])
    picked = random.Random(config.train.seed).sample(train, min(shots, len(train)))
    return [message for example in picked for message in example.messages]


def with_shots(examples, shots: list[dict]):
    return [type(e)([*shots, *e.messages], e.row, e.file, e.facts) for e in examples]


def evaluate_lm(model, tokenizer, data: LmData, general, shots, config: RunConfig) -> dict:
    """Held-out perplexity; for sft also generated answers and their scores; the general set."""
    batch = config.eval.batch_size
    result = {**perplexity(model, data.encoded["test"], tokenizer, batch)}
    if data.template is not None:
        test = with_shots(data.examples["test"][: config.eval.generate_limit], shots)
        scores, rows = evaluate_answers(
            model, tokenizer, test, data.template, config.task, config.eval
        )
        result.update(scores)
        result["answers"] = rows
        result["examples"] = pick_rows(list(rows), config.eval.examples, config.task.refusal)
    if general is not None:
        rows, encoded = general
        scores, _ = evaluate_answers(
            model,
            tokenizer,
            with_shots(rows, shots),
            data.template,
            config.task,
            config.eval,
            "general",
        )
        result["general"] = {
            "rouge_l": scores["rouge_l"],
            **perplexity(model, encoded, tokenizer, batch),
        }
    return result


def train_lm(spec, model, task, tokenizer, config, accelerator, run_dir, data: LmData, resume):
    if spec.apply is None:
        return model, FitState()
    model = spec.apply(model, config.method, describe(model))

    def validate(model):
        return perplexity(model, data.encoded["val"], tokenizer, config.eval.batch_size)

    trainer = Trainer(
        model, task, tokenizer, config.train, accelerator, run_dir, validate, lm_collator(tokenizer)
    )
    return model, trainer.fit(data.encoded["train"], resume)


def lm_summary(spec, task, config, model, state, started, accelerator, before, after) -> dict:
    summary = base_summary(spec, task, config, model, state, started, accelerator.num_processes)
    headline = "key_fact_hit_rate" if after.get("key_fact_hit_rate") is not None else None
    headline = headline or ("rouge_l" if after.get("rouge_l") is not None else "perplexity")
    summary.update(score_name=headline, score_before=before[headline], score=after[headline])
    for key in SCORES:
        if after.get(key) is not None:
            summary[f"{key}_before"], summary[key] = before[key], after[key]
    for key in ("rouge_l", "perplexity"):
        if "general" in after:
            summary[f"general_{key}_before"] = before["general"][key]
            summary[f"general_{key}"] = after["general"][key]
    return summary


def lm_run_info(spec, task, config, model_path, template, shots) -> dict:
    return {
        "base_model": model_path,
        "model": config.model.name,
        "model_kind": "causal_lm",
        "method": spec.name,
        "task": task.name,
        "artifact": spec.artifact,
        "template": template,
        "system": config.task.system,
        "shots": shots,
        "max_length": config.data.max_length,
        "max_new_tokens": config.eval.max_new_tokens,
        "method_settings": config.method.model_dump(),
    }


def run_causal_lm(config: RunConfig, task, spec, resume: bool = False) -> dict:
    run_dir = Path(config.output.dir)
    accelerator = make_accelerator(config.train)
    main = accelerator.is_main_process
    prepare_run_dir(run_dir, resume)
    set_seed(config.train.seed)
    if main:
        start_model(config.model.name)  # the main process converts an embedded model once
    accelerator.wait_for_everyone()
    model_path = start_model(config.model.name)
    tokenizer = load_tokenizer(model_path, config.model.trust_remote_code)
    data = prepare_data(config, tokenizer)
    general = prepare_general(config, tokenizer, data.template)
    model = load_causal_lm(
        model_path, config.model.trust_remote_code, **spec.options(config.method)
    )
    shots = few_shot_messages(spec, config, data)
    if main:
        save_config(config, run_dir / "config.yaml")
        write_json(run_dir / "data_summary.json", data.summary)

    before = evaluate_lm(model, tokenizer, data, general, shots, config)
    started = time.perf_counter()
    model, state = train_lm(
        spec, model, task, tokenizer, config, accelerator, run_dir, data, resume
    )
    raw = accelerator.unwrap_model(model)
    after = evaluate_lm(raw, tokenizer, data, general, shots, config) if spec.apply else before
    summary = lm_summary(spec, task, config, raw, state, started, accelerator, before, after)
    if main:
        write_json(run_dir / "eval_before.json", before)
        write_json(run_dir / "eval_after.json", after)
        write_json(run_dir / "train_summary.json", summary)
        save_artifact(raw, tokenizer, run_dir / spec.artifact, spec.artifact)
        write_run_info(run_dir, lm_run_info(spec, task, config, model_path, data.template, shots))
        write_report(run_dir)
    accelerator.wait_for_everyone()
    return summary
