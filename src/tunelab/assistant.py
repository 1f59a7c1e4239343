"""Answering questions with a finished sft run: its template, system message, shots and stop
rule (EOS), loaded once; used by `tunelab generate` and `tunelab chat`."""

from dataclasses import dataclass
from pathlib import Path

from tunelab.artifacts import load_run
from tunelab.data.readers import jsonl_records, text_lines
from tunelab.data.templates import adds_special_tokens, generation_prompt
from tunelab.errors import DataError, TunelabError, notice
from tunelab.generation import context_of, generate
from tunelab.run_record import RunRecord, read_record
from tunelab.tasks.generative.scope_guard import GuardRouting, ScopeGuard, load_guard


@dataclass
class Assistant:
    model: object
    tokenizer: object
    record: RunRecord
    guard: ScopeGuard | None = None  # the run's scope guard, when it trained one

    def prompt(self, history: list[dict]) -> str:
        """History ends with the user's message; the run's few-shot turns come first."""
        messages = [*self.record.shots, *history]
        return generation_prompt(messages, self.record.template, self.tokenizer, self.record.system)

    def fitted(self, history: list[dict], max_new_tokens: int) -> list[dict]:
        """The latest turns of a chat whose prompt leaves `max_new_tokens` within the model's
        context: the oldest exchanges go first, with a note (a history past the context was
        sent whole)."""
        context = context_of(self.model)
        kept = history
        while context and len(kept) > 1 and self.prompt_tokens(kept) + max_new_tokens > context:
            kept = kept[2:]  # the oldest exchange: a question and its answer
        if len(kept) < len(history):
            notice(
                f"the chat outgrew the model's context: its first {len(history) - len(kept)} turns were left out"
            )
        return kept

    def prompt_tokens(self, history: list[dict]) -> int:
        special = adds_special_tokens(self.record.template)
        return len(self.tokenizer(self.prompt(history), add_special_tokens=special)["input_ids"])

    def answer(self, questions: list[str], streamer=None, **sampling) -> list[str]:
        return self.converse(
            [[{"role": "user", "content": q}] for q in questions], streamer, **sampling
        )

    def converse(self, histories: list[list[dict]], streamer=None, **sampling) -> list[str]:
        """A reply to each history (ending with the user's message). Questions the scope guard
        calls off-topic get the refusal sentence and never reach the LM; the rest are answered,
        not refused."""
        every = [self.prompt(history) for history in histories]
        routing = self.route(histories, every)
        prompts = routing.answered(every)
        if routing.banned_opening is not None:
            sampling["banned_opening"] = routing.banned_opening
        generated = self.reply(prompts, streamer, **sampling) if prompts else []
        if streamer is not None and any(routing.refused):
            streamer.on_finalized_text(routing.refusal, stream_end=True)
        return routing.merged(generated)

    def route(self, histories: list[list[dict]], prompts: list[str]) -> GuardRouting:
        if self.guard is None:
            return GuardRouting.unguarded(len(histories))
        asked = [history[-1]["content"] for history in histories]
        adds = adds_special_tokens(self.record.template)
        return self.guard.route(asked, prompts, self.tokenizer, adds)

    def reply(self, prompts: list[str], streamer=None, **sampling) -> list[str]:
        return generate(
            self.model,
            self.tokenizer,
            prompts,
            add_special_tokens=adds_special_tokens(self.record.template),
            streamer=streamer,
            **sampling,
        )


def load_assistant(run_dir: str | Path) -> Assistant:
    record = read_record(run_dir)  # the kind is checked before the model loads
    if not record.answers_questions:
        raise TunelabError(f"{run_dir} is a {record.task} run; generate and chat need an sft run")
    model, tokenizer, record = load_run(run_dir)
    return Assistant(model, tokenizer, record, load_guard(run_dir, record))


def read_questions(path: Path) -> list[str]:
    """A .jsonl file of {"question"|"prompt"|"instruction": ...} lines, or plain lines of text."""
    if not path.is_file():
        raise TunelabError(f"file not found: {path}")
    lines = [line.rstrip("\r") for line in text_lines(path.read_text(encoding="utf-8"))]
    if path.suffix != ".jsonl":
        return [line for line in lines if line.strip()]
    questions = []
    for number, record in jsonl_records(path, lines):
        key = next((k for k in ("question", "prompt", "instruction") if k in record), None)
        if key is None or not str(record[key]).strip():
            raise DataError(path, "missing or empty", row=number, field="question")
        questions.append(str(record[key]))
    return questions
