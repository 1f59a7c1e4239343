"""The models in memory that the engine runs batches on: a Transformers model (rows of one
batch may use different adapters) or a llama.cpp model (a GGUF export of a run)."""

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import torch
from transformers import (
    LogitsProcessorList,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteriaList,
)

from tunelab.serve.rows import Job, RowSampler, RowTracker, take_token

BASE_ADAPTER = "__base__"  # PEFT's name for "no adapter" in a mixed batch


class Pool(Protocol):
    tokenizer: PreTrainedTokenizerBase
    mixed: bool

    @property
    def context(self) -> int: ...

    def run(self, jobs: list[Job]) -> None:
        """Generates every job's answer, handing each new token to `take_token`."""


def eos_set(tokenizer) -> set[int]:
    return {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()


@dataclass
class TorchPool:
    """One model in memory; rows of one batch may use different adapters when `mixed`."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    mixed: bool = False

    def run(self, jobs: list[Job]) -> None:
        with torch.inference_mode(), self.adapters_for(jobs) as extra:
            generate_rows(self, jobs, extra)

    @contextmanager
    def adapters_for(self, jobs: list[Job]):
        """Yields generate's extra arguments. Rows for several adapters go through PEFT's
        mixed-batch path (`adapter_names`: each adapter runs on its rows' slice); a batch for
        one adapter takes the plain path, which does not split the batch at every layer."""
        names = {job.adapter for job in jobs}
        if not self.mixed:
            yield {}
        elif len(names) > 1:
            yield {"adapter_names": [job.adapter for job in jobs]}
        elif names == {BASE_ADAPTER}:
            with self.model.disable_adapter():
                yield {}
        else:
            self.model.set_adapter(names.pop())
            yield {}

    @property
    def context(self) -> int:
        """The longest sequence (prompt + answer) the model was built for."""
        config = self.model.config if not self.mixed else self.model.base_model.model.config
        return int(getattr(config, "max_position_embeddings", 2048))


def generate_rows(pool: TorchPool, jobs: list[Job], extra: dict) -> None:
    """One `generate` call for all rows: left-padded prompts, each row's adapter and hooks."""
    pad = pool.tokenizer.pad_token_id
    width = max(len(job.prompt_ids) for job in jobs)
    device = next(pool.model.parameters()).device
    input_ids = torch.tensor(
        [[pad] * (width - len(job.prompt_ids)) + job.prompt_ids for job in jobs], device=device
    )
    attention_mask = torch.tensor(
        [[0] * (width - len(job.prompt_ids)) + [1] * len(job.prompt_ids) for job in jobs],
        device=device,
    )
    eos_ids = [eos_set(job.tokenizer) for job in jobs]
    pool.model.generate(
        input_ids=input_ids,
        attention_mask=attention_mask,
        max_new_tokens=max(job.max_tokens for job in jobs),
        do_sample=False,
        logits_processor=LogitsProcessorList([RowSampler(jobs)]),
        stopping_criteria=StoppingCriteriaList([RowTracker(jobs, eos_ids)]),
        eos_token_id=sorted(set().union(*eos_ids)),
        pad_token_id=pad,
        **extra,
    )


@dataclass
class LlamaPool:
    """A run's GGUF export in llama.cpp (llama-cpp-python). Its API decodes one sequence at a
    time, so the rows of a batch run one after the other; prompts are the run's tokens (the
    converter keeps the vocabulary's ids) and answers are decoded by the run's tokenizer."""

    llm: object  # llama_cpp.Llama
    tokenizer: PreTrainedTokenizerBase
    mixed: bool = False

    @property
    def context(self) -> int:
        return int(self.llm.n_ctx())

    def run(self, jobs: list[Job]) -> None:
        for job in jobs:
            eos = eos_set(job.tokenizer) | {self.llm.token_eos()}
            if job.seed is not None:
                self.llm.set_seed(job.seed)
            sampling = {"temp": job.temperature, "top_p": job.top_p, "top_k": 0, "min_p": 0.0}
            if job.banned_opening is not None:
                sampling["logits_processor"] = opening_ban(job)
            for token in self.llm.generate(job.prompt_ids, repeat_penalty=1.0, **sampling):
                take_token(job, token, eos)
                if job.finish_reason is not None:
                    break


def opening_ban(job: Job):
    """llama.cpp's form of RowSampler's opening ban: a callable on (ids, scores) numpy arrays."""
    from llama_cpp import LogitsProcessorList  # built by `make llama`; only GGUF runs need it

    def ban(_ids, scores):
        if not job.tokens:
            scores[job.banned_opening] = float("-inf")
        return scores

    return LogitsProcessorList([ban])
