"""Per-request state inside one batched `generate` call.

Transformers' `generate` takes one temperature, one top-p, one length limit and one stop rule
for the whole batch; a server batches requests that each brought their own. Two small hooks
written here make that work: `RowSampler` (a logits processor) samples each row with its own
temperature, top-p and seed and leaves greedy rows to `generate`'s argmax, and `RowTracker` (a
stopping criterion, called once per step with the new tokens) decodes each row, applies its
stop strings and token limit, notices a client that went away, and hands new text to it."""

import asyncio
import threading
from dataclasses import dataclass, field

import torch
from transformers import LogitsProcessor, PreTrainedTokenizerBase, StoppingCriteria

# what a job's queue receives: ("text", piece) ... then ("done", finish_reason) or ("error", msg)
Event = tuple[str, str]


@dataclass
class Job:
    """One request's generation: what it asked for, where its text goes, how it ended."""

    prompt_ids: list[int]
    pool_key: int  # id() of the pool (the model in memory) that runs it
    adapter: str | None
    tokenizer: PreTrainedTokenizerBase
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    banned_opening: int | None = None  # the refusal's first token, when the guard let it through
    loop: asyncio.AbstractEventLoop | None = None
    events: asyncio.Queue | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    tokens: list[int] = field(default_factory=list)
    text: str = ""  # decoded so far, cut at a stop string
    sent: int = 0  # characters of `text` handed to the client
    finish_reason: str | None = None

    def emit(self, event: Event) -> None:
        if self.loop is not None and self.events is not None:
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)

    @property
    def budget(self) -> int:
        """Tokens this job may occupy in a batch: its prompt plus its answer."""
        return len(self.prompt_ids) + self.max_tokens


class RowSampler(LogitsProcessor):
    """Samples the rows that asked for it (each with its own generator) and leaves greedy rows
    as they are, so that `generate` with `do_sample=False` picks exactly the sampled token; a
    row's banned opening token is ruled out at its first step."""

    def __init__(self, jobs: list[Job]):
        self.jobs = jobs
        self.generators = [self.generator(job) for job in jobs]

    @staticmethod
    def generator(job: Job) -> torch.Generator | None:
        if job.temperature == 0:
            return None
        generator = torch.Generator()
        generator.manual_seed(job.seed if job.seed is not None else torch.seed())
        return generator

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.Tensor:
        for row, (job, generator) in enumerate(zip(self.jobs, self.generators, strict=True)):
            if job.banned_opening is not None and not job.tokens:
                scores[row, job.banned_opening] = float("-inf")
            if generator is not None:
                token = sample(scores[row].float().cpu(), job.temperature, job.top_p, generator)
                scores[row] = torch.full_like(scores[row], float("-inf"))
                scores[row, token] = 0.0
        return scores


def sample(logits: torch.Tensor, temperature: float, top_p: float, generator) -> int:
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    if not torch.isfinite(probs).all():  # a temperature so small the softmax overflows: its
        return int(logits.argmax())  # limit, the most likely token (the batch-mates unharmed)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(descending=True)
        # keep the smallest set of tokens whose probability reaches top_p (at least one)
        keep = sorted_probs.cumsum(0) - sorted_probs < top_p
        probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_probs[keep])
    return int(torch.multinomial(probs, 1, generator=generator))


class RowTracker(StoppingCriteria):
    """Called by `generate` after each step: takes each row's new token and says which rows
    are done (their tokens from then on are padding, which the row ignores)."""

    def __init__(self, jobs: list[Job], eos_ids: list[set[int]]):
        self.jobs, self.eos_ids = jobs, eos_ids

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        new_tokens = input_ids[:, -1].tolist()
        for job, token, eos in zip(self.jobs, new_tokens, self.eos_ids, strict=True):
            if job.finish_reason is None:
                take_token(job, token, eos)
        return torch.tensor(
            [job.finish_reason is not None for job in self.jobs], device=input_ids.device
        )


def take_token(job: Job, token: int, eos: set[int]) -> None:
    if job.cancelled.is_set():
        job.finish_reason = "cancelled"
        return
    if token in eos:
        finish(job, "stop")
        return
    job.tokens.append(token)
    job.text = job.tokenizer.decode(job.tokens, skip_special_tokens=True)
    cut = min((i for i in (job.text.find(s) for s in job.stop) if i >= 0), default=-1)
    if cut >= 0:
        job.text = job.text[:cut]
        finish(job, "stop")
    elif len(job.tokens) >= job.max_tokens:
        finish(job, "length")
    else:
        send_safe_text(job)


def send_safe_text(job: Job) -> None:
    """New text, holding back what may be the start of a stop string or of a character whose
    bytes are still coming (the decoder shows those as U+FFFD)."""
    hold = max((len(s) - 1 for s in job.stop), default=0)
    end = len(job.text) - hold
    if job.text.endswith("\ufffd"):
        end = min(end, len(job.text) - 1)
    if end > job.sent:
        job.emit(("text", job.text[job.sent : end]))
        job.sent = end


def finish(job: Job, reason: str) -> None:
    job.finish_reason = reason
    if len(job.text) > job.sent:
        job.emit(("text", job.text[job.sent :]))
        job.sent = len(job.text)
    job.emit(("done", reason))


def refuse(job: Job, refusal: str) -> None:
    """A job answered with the refusal sentence without generating (the scope guard said no)."""
    job.tokens = job.tokenizer(refusal, add_special_tokens=False)["input_ids"]
    job.text, job.sent, job.finish_reason = refusal, len(refusal), "stop"
    job.emit(("text", refusal))
    job.emit(("done", "stop"))
