"""pretrain: continued self-supervised training on raw domain text packed into blocks; held-out
perplexity before and after."""

from typing import Literal

from torch import nn

from tunelab.config import split_seed
from tunelab.config.settings import TaskSettings
from tunelab.data.lm_prepare import prepare_pretrain
from tunelab.data.streaming.corpus import prepare_pretrain_arrow, streams
from tunelab.tasks.base import Score, register_task
from tunelab.tasks.generative.common import GenerativeTask
from tunelab.tasks.generative.evaluate import perplexity


class PretrainSettings(TaskSettings):
    name: Literal["pretrain"] = "pretrain"


@register_task
class PretrainTask(GenerativeTask):
    name = "pretrain"
    settings = PretrainSettings
    score = Score("perplexity", higher_is_better=False)
    # documents are split by data.split alone; mixing is sft's
    ignores = frozenset({"data.val_path", "data.test_path", "data.mix"})

    def prepare(self) -> dict:
        prepare = prepare_pretrain_arrow if streams(self.config.data) else prepare_pretrain
        self.data = prepare(self.config.data, self.tokenizer, split_seed(self.config))
        return self.data.summary

    def evaluate(self, model: nn.Module) -> dict:
        test = self.data.encoded["test"]
        return perplexity(model, test, self.tokenizer, self.config.eval.batch_size)
