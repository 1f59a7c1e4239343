"""What the pair-trained preference tasks (reward, dpo, kto) share: chosen/rejected pairs split
by source row, prompts rendered through the template, TRL as the trainer, and the report.
`PairTask` is the family's base; each task file adds its model, TRL trainer and metrics."""

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from torch import nn

from tunelab.charts import Panel
from tunelab.config import split_seed
from tunelab.data.lm_prepare import split_by_fractions
from tunelab.data.preference import Pair, read_pairs, rendered_prompt
from tunelab.data.templates import adds_special_tokens, resolve_template
from tunelab.errors import TunelabError
from tunelab.methods import MethodSpec, full_or_lora
from tunelab.tasks.base import Task, prompt_record
from tunelab.tasks.preference.report import preference_report


def split_pairs(config) -> dict[str, list[Pair]]:
    """Split by source row, so the pairs expanded from one ranking stay in one split."""
    data, seed = config.data, split_seed(config)
    pairs = read_pairs(data.path, data.format)
    rows = sorted({(p.file, p.row) for p in pairs})
    test = read_pairs(data.test_path, data.format) if data.test_path else None
    fractions = data.split if test is None else (1 - data.split[1], data.split[1], 0.0)
    parts = split_by_fractions(rows, fractions, seed)
    keys = [set(part) for part in parts]
    splits = {
        name: [p for p in pairs if (p.file, p.row) in part]
        for name, part in zip(("train", "val", "test"), keys, strict=True)
    }
    if test is not None:
        splits["test"] = test
    if data.limit_train:
        splits["train"] = splits["train"][: data.limit_train]
    for name, part in splits.items():
        if not part:
            raise TunelabError(f"{data.path}: the {name} split is empty; change data.split")
    return splits


class PairTask(Task):
    trainer: ClassVar = "trl"
    panel: ClassVar[Panel]  # the validation curves TRL's logs give this task
    ignores: ClassVar = frozenset({"data.val_path", "data.mix"})  # split_pairs: split, test_path

    @classmethod
    def accepts(cls, method: MethodSpec) -> bool:
        return full_or_lora(method)

    def prepare(self) -> dict:
        self.template = resolve_template(self.config.task.template, self.tokenizer)
        self.splits = split_pairs(self.config)
        self.check_room_for_answers()
        splits = {name: {"pairs": len(pairs)} for name, pairs in self.splits.items()}
        return {"template": self.template, "splits": splits}

    def check_room_for_answers(self) -> None:
        """A prompt that fills data.max_length leaves no token of either answer to compare; a
        split of nothing else was a traceback inside TRL."""
        limit = self.config.data.max_length
        for name, pairs in self.splits.items():
            if not any(self.fits(pairs[i : i + 256], limit) for i in range(0, len(pairs), 256)):
                raise TunelabError(
                    f"{self.config.data.path}: every {name} prompt is at least data.max_length="
                    f"{limit} tokens long, leaving no room for the answers; raise data.max_length"
                )

    def fits(self, pairs: list[Pair], limit: int) -> bool:
        """Whether any of these pairs' prompts leaves room for an answer under `limit`."""
        prompts = [self.prompt(p) for p in pairs]
        sizes = self.tokenizer(prompts, add_special_tokens=self.add_special_tokens)["input_ids"]
        return any(len(ids) < limit for ids in sizes)

    def prompt(self, pair: Pair) -> str:
        return rendered_prompt(pair, self.template, self.tokenizer, self.config.task.system)

    @property
    def add_special_tokens(self) -> bool:
        return adds_special_tokens(self.template)

    def split_texts(self) -> dict[str, list[str]]:
        return {
            name: [f"{p.prompt} {p.chosen}" for p in pairs] for name, pairs in self.splits.items()
        }

    def preview(self, rows: int) -> list[Text]:
        """Each pair as the model reads it: the rendered prompt, then both answers."""
        lines = []
        for i, pair in enumerate(self.splits["train"][:rows], start=1):
            shown = f"{self.prompt(pair)}\n[chosen] {pair.chosen}\n[rejected] {pair.rejected}"
            lines += [Text(f"--- pair {i} (row {pair.row})"), Text(shown)]
        return lines

    def train_size(self) -> int:
        return len(self.splits["train"])

    def trainer_inputs(self, model: nn.Module, args, callbacks: list) -> dict:
        """What every TRL trainer of the family takes: the model, its config, the train and
        validation datasets (`dataset(split)`, each task's own rows), the tokenizer, callbacks."""
        return {
            "model": model,
            "args": args,
            "train_dataset": self.dataset("train"),
            "eval_dataset": self.dataset("val"),
            "processing_class": self.tokenizer,
            "callbacks": callbacks,
        }

    def scores(self, before: dict, after: dict) -> dict:
        margins = {"margin_before": before["margin"], "margin": after["margin"]}
        return {**super().scores(before, after), **margins}

    def record(self) -> dict:
        return prompt_record(self.config, self.template)

    @classmethod
    def report(cls, run_dir: Path, data: dict, before: dict, after: dict) -> list[str]:
        return preference_report(run_dir, data, before, after, cls.panel)
