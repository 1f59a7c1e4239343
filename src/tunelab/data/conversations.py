"""Instruction records in the formats people ship (Alpaca, prompt/completion, chat messages)
read into one shape: a list of {role, content} messages ending with the assistant's answer."""

from dataclasses import dataclass, field
from pathlib import Path

from tunelab.data.readers import read_records
from tunelab.errors import DataError

# ShareGPT spells roles differently.
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
}
FORMAT_HINT = (
    "expected instruction/input/output (Alpaca), prompt/completion, question/answer, "
    "or messages / conversations (chat)"
)


@dataclass(frozen=True)
class Example:
    messages: list[dict]  # [{"role": "user"|"assistant"|"system", "content": str}, ...]
    row: int
    file: str
    facts: list[str] = field(default_factory=list)  # key facts a right answer must contain
    source: str | None = None  # where the question came from (a row's optional "source")

    @property
    def question(self) -> str:
        return next(m["content"] for m in reversed(self.messages) if m["role"] == "user")

    @property
    def answer(self) -> str:
        return self.messages[-1]["content"]


def text_of(record: dict, key: str, path: Path, row: int, required: bool = True) -> str:
    value = record.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise DataError(path, "empty value" if key in record else "missing", row=row, field=key)
        return ""
    if not isinstance(value, str):
        raise DataError(path, "must be text", row=row, field=key)
    return value


def chat_messages(record: dict, key: str, path: Path, row: int) -> list[dict]:
    turns = record[key]
    if not isinstance(turns, list) or not turns:
        raise DataError(path, "must be a non-empty list of messages", row=row, field=key)
    messages = []
    for i, turn in enumerate(turns):
        where = f"{key}[{i}]"
        if not isinstance(turn, dict):
            raise DataError(path, "must be an object", row=row, field=where)
        role = turn.get("role", turn.get("from"))
        role = SHAREGPT_ROLES.get(role) if isinstance(role, str) else None
        if role is None:
            raise DataError(path, "role must be system, user or assistant", row=row, field=where)
        content = turn.get("content", turn.get("value"))
        if not isinstance(content, str) or not content.strip():
            raise DataError(path, "empty content", row=row, field=where)
        messages.append({"role": role, "content": content})
    if messages[-1]["role"] != "assistant":
        raise DataError(path, "the last message must be the assistant's", row=row, field=key)
    return messages


def to_messages(record: dict, path: Path, row: int) -> list[dict]:
    for key in ("messages", "conversations"):
        if key in record:
            return chat_messages(record, key, path, row)
    if "instruction" in record:
        instruction = text_of(record, "instruction", path, row)
        extra = text_of(record, "input", path, row, required=False)
        prompt = f"{instruction}\n\n{extra}" if extra else instruction
        response = text_of(record, "output", path, row)
    else:
        pairs = [("prompt", "completion"), ("question", "answer")]
        keys = next((p for p in pairs if p[0] in record), None)
        if keys is None:
            raise DataError(path, f"unknown record format; {FORMAT_HINT}", row=row)
        prompt, response = (text_of(record, key, path, row) for key in keys)
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


def example_of(record: dict, path: Path, row: int) -> Example:
    """One record as an Example, checked: a bad field is a one-line error naming it."""
    facts = record.get("facts") or []
    if not isinstance(facts, list) or not all(isinstance(f, str) for f in facts):
        raise DataError(path, "must be a list of strings", row=row, field="facts")
    source = text_of(record, "source", path, row, required=False) or None
    return Example(to_messages(record, path, row), row, str(path), facts, source)


def read_examples(source: str, fmt: str = "auto") -> list[Example]:
    path, records = read_records(source, fmt)
    examples = [example_of(record, path, row) for row, record in records]
    if not examples:
        raise DataError(path, "no data rows")
    return examples
