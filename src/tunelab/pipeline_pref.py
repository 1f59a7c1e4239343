"""Preference tasks on TRL's trainers (reward model, DPO), behind a thin bridge: tunelab's
config in, tunelab's run directory, metrics stream and report out."""

import time
from pathlib import Path

from accelerate.utils import set_seed
from datasets import Dataset

from tunelab.artifacts import save_artifact, write_run_info
from tunelab.config import RunConfig, save_config
from tunelab.data.lm_prepare import split_by_fractions
from tunelab.data.preference import Pair, read_pairs, rendered_prompt
from tunelab.data.templates import resolve_template
from tunelab.errors import TunelabError
from tunelab.evaluate_pref import dpo_metrics, reward_model_metrics
from tunelab.generation import generate
from tunelab.models.anatomy import describe
from tunelab.models.loader import load_causal_lm, load_classifier, load_tokenizer
from tunelab.report import write_report
from tunelab.run_common import base_summary, prepare_run_dir, start_model, write_json
from tunelab.train.loop import FitState
from tunelab.train.trl_bridge import MetricsStream, trl_arguments


def split_pairs(config: RunConfig) -> dict[str, list[Pair]]:
    """Split by source row, so the pairs expanded from one ranking stay in one split."""
    pairs = read_pairs(config.data.path, config.data.format)
    rows = sorted({(p.file, p.row) for p in pairs})
    test = read_pairs(config.data.test_path, config.data.format) if config.data.test_path else None
    fractions = (
        config.data.split if test is None else (1 - config.data.split[1], config.data.split[1], 0.0)
    )
    parts = split_by_fractions(rows, fractions, config.train.seed)
    by_row = [{key for key in part} for part in parts]
    splits = {
        name: [p for p in pairs if (p.file, p.row) in keys]
        for name, keys in zip(("train", "val", "test"), by_row, strict=True)
    }
    if test is not None:
        splits["test"] = test
    if config.data.limit_train:
        splits["train"] = splits["train"][: config.data.limit_train]
    for name, part in splits.items():
        if not part:
            raise TunelabError(f"{config.data.path}: the {name} split is empty; change data.split")
    return splits


class PreferenceRun:
    """One reward or DPO run: the shared setup, then the task's own model, trainer and metrics."""

    def __init__(self, config: RunConfig, task, spec):
        self.config, self.task, self.spec = config, task, spec
        self.run_dir = Path(config.output.dir)
        self.model_path = start_model(config.model.name)
        self.tokenizer = load_tokenizer(self.model_path, config.model.trust_remote_code)
        self.template = resolve_template(config.task.template, self.tokenizer)
        self.splits = split_pairs(config)
        self.options = spec.options(config.method)

    def prompt(self, pair: Pair) -> str:
        return rendered_prompt(pair, self.template, self.tokenizer, self.config.task.system)

    def summary_of_data(self) -> dict:
        return {
            "template": self.template,
            "splits": {k: {"pairs": len(v)} for k, v in self.splits.items()},
        }

    def steps_per_epoch(self) -> int:
        train = self.config.train
        return max(1, len(self.splits["train"]) // (train.batch_size * train.grad_accum))


class RewardRun(PreferenceRun):
    score_name = "pairwise_accuracy"

    def texts(self, pairs: list[Pair]) -> list[tuple[str, str]]:
        eos = self.tokenizer.eos_token  # TRL appends EOS to every training text; score alike
        return [(self.prompt(p) + p.chosen + eos, self.prompt(p) + p.rejected + eos) for p in pairs]

    def dataset(self, name: str) -> Dataset:
        return Dataset.from_list(
            [{"chosen": c, "rejected": r} for c, r in self.texts(self.splits[name])]
        )

    def load(self):
        model = load_classifier(
            self.model_path,
            ["reward"],
            self.tokenizer,
            self.config.model.trust_remote_code,
            **self.options,
        )
        return self.spec.apply(model, self.config.method, describe(model))

    def evaluate(self, model) -> dict:
        pairs = self.texts(self.splits["test"])
        return reward_model_metrics(model, self.tokenizer, pairs, self.config.eval.batch_size)

    def trainer(self, model, stream):
        from trl import RewardConfig, RewardTrainer

        args = RewardConfig(**trl_arguments(self.config.train, self.run_dir, self.steps_per_epoch()),
                            max_length=self.config.data.max_length)  # fmt: skip
        return RewardTrainer(model=model, args=args, train_dataset=self.dataset("train"),
                             eval_dataset=self.dataset("val"), processing_class=self.tokenizer,
                             callbacks=[stream])  # fmt: skip


class DpoRun(PreferenceRun):
    score_name = "preference_accuracy"

    def dataset(self, name: str) -> Dataset:
        rows = [
            {"prompt": self.prompt(p), "chosen": p.chosen, "rejected": p.rejected}
            for p in self.splits[name]
        ]
        return Dataset.from_list(rows)

    def load(self):
        trust = self.config.model.trust_remote_code
        model = load_causal_lm(self.model_path, trust, **self.options)
        # LoRA / QLoRA: the reference is the policy with its adapter off (no second copy).
        self.reference = (
            None if self.spec.artifact == "adapter" else load_causal_lm(self.model_path, trust)
        )
        return self.spec.apply(model, self.config.method, describe(model))

    def evaluate(self, model) -> dict:
        test = self.splits["test"]
        prompts = [self.prompt(p) for p in test]
        metrics = dpo_metrics(
            model, self.reference, self.tokenizer, prompts, [p.chosen for p in test], [p.rejected for p in test],
            self.config.task.beta, self.template != "chat", self.config.eval.batch_size,
        )  # fmt: skip
        shown = test[: self.config.eval.examples]
        answers = generate(model, self.tokenizer, [self.prompt(p) for p in shown], self.config.eval.max_new_tokens,
                           add_special_tokens=self.template != "chat")  # fmt: skip
        metrics["examples"] = [
            {"question": p.prompt, "chosen": p.chosen, "rejected": p.rejected, "answer": a}
            for p, a in zip(shown, answers, strict=True)
        ]
        return metrics

    def trainer(self, model, stream):
        from trl import DPOConfig, DPOTrainer

        args = DPOConfig(**trl_arguments(self.config.train, self.run_dir, self.steps_per_epoch()),
                         beta=self.config.task.beta, max_length=self.config.data.max_length)  # fmt: skip
        return DPOTrainer(model=model, ref_model=self.reference, args=args, train_dataset=self.dataset("train"),
                          eval_dataset=self.dataset("val"), processing_class=self.tokenizer, callbacks=[stream])  # fmt: skip


RUNS = {"reward": RewardRun, "dpo": DpoRun}


def run_info(job: PreferenceRun) -> dict:
    config = job.config
    kind = "classifier" if job.task.name == "reward" else "causal_lm"
    return {
        "base_model": job.model_path,
        "model": config.model.name,
        "model_kind": kind,
        "labels": ["reward"],
        "method": job.spec.name,
        "task": job.task.name,
        "artifact": job.spec.artifact,
        "template": job.template,
        "system": config.task.system,
        "shots": [],
        "max_length": config.data.max_length,
        "truncation_side": config.data.truncation_side,
        "pooling": "last_token",
        "padding_side": job.tokenizer.padding_side,
        "method_settings": config.method.model_dump(),
    }


def run_preference(config: RunConfig, task, spec, resume: bool = False) -> dict:
    if resume:  # no mid-run checkpoints here: an unfinished run starts again from the beginning
        (Path(config.output.dir) / "metrics.jsonl").unlink(missing_ok=True)
    prepare_run_dir(Path(config.output.dir), resume)
    set_seed(config.train.seed)
    job = RUNS[task.name](config, task, spec)
    model = job.load()
    save_config(config, job.run_dir / "config.yaml")
    write_json(job.run_dir / "data_summary.json", job.summary_of_data())
    before = job.evaluate(model)
    stream = MetricsStream(job.run_dir, enabled=True)
    started = time.perf_counter()
    trainer = job.trainer(model, stream)
    trainer.train()
    state = FitState(epoch=config.train.epochs, step=trainer.state.global_step,
                     seconds=time.perf_counter() - started, tokens=int(stream.tokens))  # fmt: skip
    model = trainer.model
    after = job.evaluate(model)
    summary = base_summary(
        spec, task, config, model, state, started, trainer.accelerator.num_processes
    )
    summary.update(score_name=job.score_name, score_before=before["accuracy"], score=after["accuracy"],
                   margin_before=before["margin"], margin=after["margin"])  # fmt: skip
    write_json(job.run_dir / "eval_before.json", before)
    write_json(job.run_dir / "eval_after.json", after)
    write_json(job.run_dir / "train_summary.json", summary)
    save_artifact(model, job.tokenizer, job.run_dir / spec.artifact, spec.artifact)
    write_run_info(job.run_dir, run_info(job))
    write_report(job.run_dir)
    return summary
