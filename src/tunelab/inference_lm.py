"""Answering questions with a finished sft run: its template, system message, shots and stop
rule (EOS), loaded once; used by `tunelab generate` and `tunelab chat`."""

from dataclasses import dataclass
from pathlib import Path

from tunelab.artifacts import load_run
from tunelab.data.readers import jsonl_records
from tunelab.data.templates import generation_prompt
from tunelab.errors import DataError, TunelabError
from tunelab.generation import generate


@dataclass
class Assistant:
    model: object
    tokenizer: object
    info: dict

    def prompt(self, history: list[dict]) -> str:
        """History ends with the user's message; the run's few-shot turns come first."""
        messages = [*self.info.get("shots", []), *history]
        return generation_prompt(
            messages, self.info["template"], self.tokenizer, self.info["system"]
        )

    def answer(self, questions: list[str], streamer=None, **sampling) -> list[str]:
        prompts = [self.prompt([{"role": "user", "content": q}]) for q in questions]
        return self.reply(prompts, streamer, **sampling)

    def reply(self, prompts: list[str], streamer=None, **sampling) -> list[str]:
        chat = self.info["template"] == "chat"
        return generate(
            self.model,
            self.tokenizer,
            prompts,
            add_special_tokens=not chat,
            streamer=streamer,
            **sampling,
        )


def load_assistant(run_dir: str | Path) -> Assistant:
    model, tokenizer, info = load_run(run_dir)
    if info.get("model_kind") != "causal_lm" or info.get("template") is None:
        raise TunelabError(f"{run_dir} is a {info['task']} run; generate and chat need an sft run")
    return Assistant(model, tokenizer, info)


def read_questions(path: Path) -> list[str]:
    """A .jsonl file of {"question"|"prompt"|"instruction": ...} lines, or plain lines of text."""
    if not path.is_file():
        raise TunelabError(f"file not found: {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix != ".jsonl":
        return [line for line in lines if line.strip()]
    questions = []
    for number, record in jsonl_records(path, "\n".join(lines)):
        key = next((k for k in ("question", "prompt", "instruction") if k in record), None)
        if key is None or not str(record[key]).strip():
            raise DataError(path, "missing or empty", row=number, field="question")
        questions.append(str(record[key]))
    return questions
