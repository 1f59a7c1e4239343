"""Instruction records in the formats people ship (Alpaca, prompt/completion, chat messages)
read into one shape: a list of {role, content} messages ending with the assistant's answer.
Chat rows may carry tools (data/tool_calls.py): a row's `tools`, an assistant's `tool_calls` and
`reasoning_content`, `tool` results; ShareGPT's `function_call` and `observation` turns."""

import json
from dataclasses import dataclass, field
from pathlib import Path

from tunelab.data.gathering import every_row
from tunelab.data.readers import read_records
from tunelab.data.tool_calls import ToolCall, calls_in, split_reasoning, written_calls
from tunelab.errors import DataError

# ShareGPT spells roles differently; LLaMA-Factory's ShareGPT has function_call / observation.
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "tool": "tool",
    "observation": "tool",
    "function_call": "assistant",
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
    tools: list[dict] = field(default_factory=list)  # the functions offered, as JSON schemas

    @property
    def question(self) -> str:
        return next(m["content"] for m in reversed(self.messages) if m["role"] == "user")

    @property
    def uses_tools(self) -> bool:
        """Functions offered, or calls and their results in the conversation."""
        return bool(self.tools) or any(
            m["role"] == "tool" or m.get("tool_calls") for m in self.messages
        )

    @property
    def answer(self) -> str:
        """The reply as text, its calls written after its content as the tools template writes
        them (a call turn's content is often empty: the calls are the answer)."""
        content = self.messages[-1]["content"]
        return "\n".join(part for part in (content, written_calls(self.calls)) if part)

    @property
    def calls(self) -> list[ToolCall]:
        """The calls the reply makes (none for a reply in words)."""
        return calls_in(self.messages[-1])


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
    messages = [chat_message(turn, f"{key}[{i}]", path, row) for i, turn in enumerate(turns)]
    if messages[-1]["role"] != "assistant":
        raise DataError(path, "the last message must be the assistant's", row=row, field=key)
    first = next(m["role"] for m in messages if m["role"] != "system")
    if first != "user":  # an answer to no question: at inference there is always one
        raise DataError(
            path,
            f"the conversation opens with the {first}'s turn, not the user's",
            row=row,
            field=key,
        )
    return messages


def chat_message(turn, where: str, path: Path, row: int) -> dict:
    if not isinstance(turn, dict):
        raise DataError(path, "must be an object", row=row, field=where)
    given = turn.get("role", turn.get("from"))
    role = SHAREGPT_ROLES.get(given) if isinstance(given, str) else None
    if role is None:
        raise DataError(path, "role must be system, user, assistant or tool", row=row, field=where)
    content = turn.get("content", turn.get("value"))
    if given == "function_call":  # ShareGPT: the call itself is the turn's value
        return {
            "role": "assistant",
            "content": "",
            "tool_calls": [call_from(content, where, path, row)],
        }
    calls = tool_calls_of(turn, where, path, row) if role == "assistant" else []
    if content is None and (calls or role == "tool"):
        content = ""
    if not isinstance(content, str) or not (content.strip() or calls or role == "tool"):
        raise DataError(path, "empty content", row=row, field=where)
    message = {"role": role, "content": content}
    if role == "assistant":
        reasoning = turn.get("reasoning_content")
        if reasoning is None:
            reasoning, message["content"] = split_reasoning(content)
        elif not isinstance(reasoning, str):
            raise DataError(path, "must be text", row=row, field=f"{where}.reasoning_content")
        if reasoning:
            message["reasoning_content"] = reasoning
    if calls:
        message["tool_calls"] = calls
    return message


def tool_calls_of(turn: dict, where: str, path: Path, row: int) -> list[dict]:
    calls = turn.get("tool_calls")
    if calls is None:
        return []
    if not isinstance(calls, list):
        raise DataError(path, "must be a list of calls", row=row, field=f"{where}.tool_calls")
    return [call_from(c, f"{where}.tool_calls[{i}]", path, row) for i, c in enumerate(calls)]


def call_from(value, where: str, path: Path, row: int) -> dict:
    """OpenAI's {"function": {"name", "arguments"}} or a bare {"name", "arguments"}; arguments
    an object or its JSON text (OpenAI's); ShareGPT's call is the JSON text of the whole."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise DataError(path, "a call must be JSON", row=row, field=where) from None
    function = value.get("function", value) if isinstance(value, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or not name:
        raise DataError(path, "a call needs a function name", row=row, field=where)
    arguments = function.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            raise DataError(path, "arguments must be JSON", row=row, field=where) from None
    if not isinstance(arguments, dict):
        raise DataError(path, "arguments must be an object", row=row, field=where)
    return ToolCall(name, arguments).as_message_part()


def tools_of(record: dict, path: Path, row: int) -> list[dict]:
    """A row's functions as chat templates read them ({"type": "function", "function": ...});
    ShareGPT rows hold the list as JSON text, some rows bare function schemas."""
    tools = record.get("tools")
    if tools is None or tools == "":
        return []
    if isinstance(tools, str):
        try:
            tools = json.loads(tools)
        except ValueError:
            raise DataError(
                path, "must be a JSON list of functions", row=row, field="tools"
            ) from None
    if not isinstance(tools, list):
        raise DataError(path, "must be a list of functions", row=row, field="tools")
    schemas = []
    for i, tool in enumerate(tools):
        function = tool.get("function", tool) if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise DataError(path, "a function needs a name", row=row, field=f"tools[{i}]")
        schemas.append({"type": "function", "function": function})
    return schemas


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
    tools = tools_of(record, path, row)
    return Example(to_messages(record, path, row), row, str(path), facts, source, tools)


def read_examples(source: str, fmt: str = "auto") -> list[Example]:
    path, records = read_records(source, fmt)
    examples = every_row(records, lambda row, record: example_of(record, path, row))
    if not examples:
        raise DataError(path, "no data rows")
    return examples
