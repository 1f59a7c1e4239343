"""classify: a new head over the pooled hidden state; cross-entropy; accuracy, P/R/F1, confusion.
Every method trains it (head adds the new head only); zero/few-shot prompting are baselines."""

from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field
from rich.text import Text
from torch import nn

from tunelab.config import split_seed
from tunelab.config.settings import TaskSettings
from tunelab.data.encode import encode_rows, label_counts
from tunelab.data.prepare import Splits, prepare_splits
from tunelab.errors import TunelabError
from tunelab.methods import MethodSpec
from tunelab.models.anatomy import describe
from tunelab.models.loader import load_classifier
from tunelab.tasks.base import Column, Score, Task, register_task
from tunelab.tasks.classify.metrics import classification_loss, evaluate, predict
from tunelab.tasks.classify.report import classification_report


class ClassifySettings(TaskSettings):
    name: Literal["classify"] = "classify"
    pooling: Literal["auto", "last_token", "cls", "mean"] = Field(
        "auto",
        description="auto: last non-padding token for decoders (seed 000), CLS for encoders; "
        "mean: average over real tokens (sentence encoders such as MiniLM).",
    )


def check_pooling(pooling: str, is_encoder: bool) -> None:
    """Transformers pools natively: last non-padding token for decoders, CLS for encoders;
    `mean` (our MeanPoolingClassifier) works on both."""
    native = "cls" if is_encoder else "last_token"
    if pooling not in ("auto", "mean", native):
        kind = "encoder" if is_encoder else "decoder"
        raise TunelabError(
            f"task.pooling: '{pooling}' is not available for a {kind} model; use '{native}'"
        )


def pick_examples(rows: list, count: int) -> list[int]:
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


@register_task
class ClassifyTask(Task):
    name = "classify"
    settings = ClassifySettings
    model_kind = "classifier"
    trainer = "loop"
    score = Score("test_accuracy", "accuracy")
    columns = (Column("macro_f1", "macro-F1"),)
    quantizable = True
    labels_texts = True
    monitors = frozenset({"val_loss", "val_accuracy", "val_macro_f1"})
    caches_frozen_blocks = True
    scores_on_val = True
    ignores = frozenset({"data.mix"})  # mixing sources is sft's

    @classmethod
    def accepts(cls, method: MethodSpec) -> bool:
        return True  # every method: a new head, adapters, virtual tokens, prompting

    collate: ClassVar = None  # pad to the longest row

    def prepare(self) -> dict:
        """Split (stratified, seeded), encode under the length policy, count what was cut."""
        data = self.config.data
        if self.run.method.left_padding:
            self.tokenizer.padding_side = "left"  # harmless for encoders, needed for decoders
        scored = self.config.eval.split
        self.splits: Splits = prepare_splits(data, split_seed(self.config), scored == "test")
        label_ids = {label: i for i, label in enumerate(self.splits.labels)}
        self.encoded, splits = {}, {}
        for name, rows in self.splits.items():
            if not rows and name == "test" and scored == "val":
                continue  # a search trial: the test split is not read
            result = encode_rows(
                rows,
                self.tokenizer,
                label_ids,
                data.max_length,
                data.overlong,
                data.truncation_side,
            )
            if not result.examples:
                raise TunelabError(f"the {name} split is empty after the max_length policy")
            self.encoded[name] = result.examples
            splits[name] = {
                "rows": len(result.examples),
                "labels": label_counts(result.examples, self.splits.labels),
                "truncated_overlong": result.truncated,
                "dropped_overlong": result.dropped,
            }
        self.picked = pick_examples(self.scored_rows, self.config.eval.examples)
        return {
            "labels": self.splits.labels,
            **self.splits.notes,
            "splits": splits,
            "max_length": data.max_length,
            "overlong": data.overlong,
        }

    def preview(self, rows: int) -> list[Text]:
        """`tunelab data preview` (and the UI): the first training rows as the classifier reads
        them, cut to max_length, with their labels."""
        lines = []
        for i, example in enumerate(self.encoded["train"][:rows], start=1):
            label = self.splits.labels[example["labels"]]
            tokens = example["input_ids"]
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            lines += [Text(f"--- row {i}: {len(tokens)} tokens, label {label}"), Text(text)]
        return lines

    def load_model(self) -> nn.Module:
        """A pretrained model with a new head, or (prompting) the whole prompted classifier."""
        method, settings = self.run.method, self.config.method
        if method.build:
            return method.build(
                self.run.model_path,
                self.splits.labels,
                self.tokenizer,
                settings,
                self.splits.train,
                self.config.train.seed,
            )
        mean = self.config.task.pooling == "mean"
        model = load_classifier(
            self.run.model_path,
            self.splits.labels,
            self.tokenizer,
            self.config.model.trust_remote_code,
            mean,
            **method.options(settings),
        )
        check_pooling(self.config.task.pooling, describe(model).is_encoder)
        return model

    @property
    def scored_rows(self) -> list:
        """The rows of the split the after-score is measured on (eval.split)."""
        return getattr(self.splits, self.config.eval.split)

    def evaluate(self, model: nn.Module) -> dict:
        test, labels = self.encoded[self.config.eval.split], self.splits.labels
        batch = self.config.eval.batch_size
        result = evaluate(model, test, labels, self.tokenizer, batch, self.run.accelerator)
        result["examples"] = self.example_predictions(model)
        return result

    def split_probabilities(self, model: nn.Module, split: str, limit: int | None = None):
        """Class probabilities on the first `limit` rows of a split (quantization calibrates
        on train rows and compares variants on validation rows)."""
        rows = self.encoded[split][:limit]
        return predict(model, rows, self.tokenizer, self.config.eval.batch_size)[0]

    def example_predictions(self, model: nn.Module) -> list[dict]:
        rows, labels = self.scored_rows, self.splits.labels
        examples = [self.encoded[self.config.eval.split][i] for i in self.picked]
        probs, _ = predict(model, examples, self.tokenizer, batch_size=len(examples) or 1)
        return [
            {
                "text": rows[i].text,
                "label": rows[i].label,
                "predicted": labels[int(np.argmax(p))],
                "probs": {label: float(x) for label, x in zip(labels, p, strict=True)},
            }
            for i, p in zip(self.picked, probs, strict=True)
        ]

    def scores(self, before: dict, after: dict) -> dict:
        return {**super().scores(before, after), "macro_f1": after["macro_f1"]}

    def split_texts(self) -> dict[str, list[str]]:
        return {name: [row.text for row in rows] for name, rows in self.splits.items()}

    def record(self) -> dict:
        return {"labels": self.splits.labels, "pooling": self.config.task.pooling}

    # the loop trainer's pieces
    compute_loss = staticmethod(classification_loss)

    @staticmethod
    def loss_units(batch: dict) -> int:
        return len(batch["input_ids"])

    def loop_rows(self) -> tuple[list[dict], list[dict]]:
        return self.encoded["train"], self.encoded["val"]

    def validate(self, model: nn.Module, rows: list[dict]) -> dict:
        batch = self.config.eval.batch_size
        return evaluate(
            model, rows, self.splits.labels, self.tokenizer, batch, self.run.accelerator
        )

    @classmethod
    def report(cls, run_dir: Path, data: dict, before: dict, after: dict) -> list[str]:
        return classification_report(run_dir, data, before, after)
