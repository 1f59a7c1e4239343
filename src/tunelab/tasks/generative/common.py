"""What the generative tasks (sft, pretrain) share: the causal LM they load, the loop trainer's
pieces (labelled-token loss, padding with -100, perplexity on validation), the data preview
and the report. `GenerativeTask` is the family's base; each task file fills in its data and
evaluation."""

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from torch import nn

from tunelab.data.lm_encode import IGNORE, lm_collator
from tunelab.data.lm_prepare import LmData
from tunelab.data.preview import marked_text
from tunelab.methods import NEW_HEAD_ONLY, MethodSpec
from tunelab.tasks.base import Task
from tunelab.tasks.generative.evaluate import perplexity
from tunelab.tasks.generative.loss import causal_lm_loss, labelled_targets
from tunelab.tasks.generative.report import generative_report


def adapts_a_causal_lm(method: MethodSpec) -> bool:
    """Methods that train a causal LM as it is: all but a new head's (nothing to train there)."""
    return method.trains and not method.can(NEW_HEAD_ONLY)


class GenerativeTask(Task):
    model_kind: ClassVar = "causal_lm"
    trainer: ClassVar = "loop"
    data: LmData

    @classmethod
    def accepts(cls, method: MethodSpec) -> bool:
        return adapts_a_causal_lm(method)

    def load_model(self) -> nn.Module:
        return self.run.causal_lm()

    def preview(self, rows: int) -> list[Text]:
        lines = []
        for i, example in enumerate(self.data.encoded["train"][:rows], start=1):
            trained = sum(label != IGNORE for label in example["labels"])
            tokens = len(example["input_ids"])
            lines += [
                Text(f"--- row {i}: {tokens} tokens, {trained} trained"),
                marked_text(example, self.tokenizer),
            ]
        return lines

    # the loop trainer's pieces
    compute_loss = staticmethod(causal_lm_loss)
    loss_units = staticmethod(labelled_targets)

    def split_texts(self) -> dict[str, list[str]]:
        """sft: each conversation's turns; pretrain keeps no rows (it packs documents)."""
        examples = self.data.examples or {}
        return {
            name: [" ".join(m["content"] for m in e.messages) for e in rows]
            for name, rows in examples.items()
        }

    @property
    def collate(self):
        return lm_collator(self.tokenizer)

    def loop_rows(self) -> tuple[list[dict], list[dict]]:
        return self.data.encoded["train"], self.data.encoded["val"]

    def validate(self, model: nn.Module, rows: list[dict]) -> dict:
        return perplexity(model, rows, self.tokenizer, self.config.eval.batch_size)

    @classmethod
    def report(cls, run_dir: Path, data: dict, before: dict, after: dict) -> list[str]:
        return generative_report(run_dir, data, before, after)
