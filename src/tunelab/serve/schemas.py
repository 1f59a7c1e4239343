"""The OpenAI request bodies the server accepts (the fields it honours; others are ignored, as
OpenAI's clients send some by default) and the checks that make a bad one a 400."""

import json
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from tunelab.data.tool_calls import CALL_OPEN, ToolCall


class Request(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


def encodable(text: str) -> str:
    """JSON can carry a lone surrogate (`"\\ud800"`) that no tokenizer can encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            "the text holds a lone surrogate (an unpaired \\ud800-\\udfff escape)"
        ) from None
    return text


class FunctionCall(BaseModel):
    name: str = Field(min_length=1)
    arguments: str = "{}"  # OpenAI sends a call's arguments as JSON text


class ToolCallPart(BaseModel):
    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall


class Function(BaseModel):
    model_config = ConfigDict(extra="allow")  # `strict` and the like: passed to the template

    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict = Field(default_factory=dict)


class Tool(BaseModel):
    type: Literal["function"]
    function: Function


class NamedFunction(BaseModel):
    name: str = Field(min_length=1)


class NamedToolChoice(BaseModel):
    type: Literal["function"]
    function: NamedFunction


class Message(BaseModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    tool_calls: list[ToolCallPart] | None = None
    tool_call_id: str | None = None
    reasoning_content: str | None = None  # an earlier answer's reasoning (DeepSeek's / vLLM's)

    @model_validator(mode="after")
    def has_content(self) -> "Message":
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError("content is required (only an assistant's tool calls may stand alone)")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only an assistant message carries tool_calls")
        return self

    @property
    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        return "".join(part.text for part in self.content)

    @model_validator(mode="after")
    def text_is_encodable(self) -> "Message":
        encodable(self.text)
        return self

    def as_turn(self) -> dict:
        """The message as tunelab's chat templates read it (a call's arguments an object)."""
        turn = {"role": self.role, "content": self.text}
        if self.role == "assistant" and self.reasoning_content:
            turn["reasoning_content"] = self.reasoning_content
        if self.tool_calls:
            turn["tool_calls"] = [
                ToolCall(c.function.name, arguments_of(c)).as_message_part()
                for c in self.tool_calls
            ]
        return turn


def arguments_of(call: ToolCallPart) -> dict:
    try:
        arguments = json.loads(call.function.arguments or "{}")
    except ValueError:
        raise ValueError(f"the arguments of {call.function.name} are not JSON") from None
    if not isinstance(arguments, dict):
        raise ValueError(f"the arguments of {call.function.name} must be a JSON object")
    return arguments


class StreamOptions(BaseModel):
    include_usage: bool = False


class Sampling(Request):
    """What chat and completions share: limits, sampling, stop rule, streaming."""

    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)  # OpenAI's default; 0 is greedy
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = Field(None, validate_default=True)
    seed: int | None = Field(None, ge=-(2**63), le=2**64 - 1)  # what torch's generator takes
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1, description="one answer per request")

    @field_validator("stop")
    @classmethod
    def at_most_four_stops(cls, stop: str | list[str] | None) -> list[str]:
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        if len(stops) > 4 or any(not s for s in stops):
            raise ValueError("up to 4 non-empty stop strings")
        return stops

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatRequest(Sampling):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    tools: list[Tool] | None = Field(None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None

    @model_validator(mode="after")
    def ends_with_a_question(self) -> "ChatRequest":
        if self.messages[-1].role not in ("user", "tool"):
            raise ValueError("the last message must be the user's or a tool result")
        if self.max_completion_tokens is not None:
            self.max_tokens = self.max_completion_tokens
        if self.tool_choice not in (None, "none", "auto") and not self.tools:
            raise ValueError("tool_choice asks for a call, but no tools are given")
        names = [t.function.name for t in self.tools or []]
        if (
            isinstance(self.tool_choice, NamedToolChoice)
            and self.tool_choice.function.name not in names
        ):
            raise ValueError(
                f"tool_choice names {self.tool_choice.function.name!r}, not among the tools"
            )
        self._turns = [m.as_turn() for m in self.messages]  # bad call arguments: a 400 here
        return self

    _turns: list[dict] = PrivateAttr(default_factory=list)

    @property
    def turns(self) -> list[dict]:
        return self._turns

    @property
    def offered_tools(self) -> list[dict] | None:
        """The tools the prompt shows the model: none with tool_choice "none"."""
        if not self.tools or self.tool_choice == "none":
            return None
        return [t.model_dump(exclude_none=True) for t in self.tools]

    @property
    def call_opening(self) -> str:
        """What the answer is made to start with: a call where tool_choice asks for one (the
        `<tool_call>` convention, data/tool_calls.py), the function's name where it names one."""
        if self.tool_choice == "required":
            return CALL_OPEN + "\n"
        if isinstance(self.tool_choice, NamedToolChoice):
            return (
                CALL_OPEN
                + "\n"
                + '{"name": '
                + json.dumps(self.tool_choice.function.name)
                + ', "arguments": '
            )
        return ""


def one_or_many(most: int):
    """A string or a list of 1 to `most` strings, read as a list."""

    def as_list(value: str | list[str]) -> list[str]:
        values = [value] if isinstance(value, str) else value
        if not values or len(values) > most:
            raise ValueError(f"1 to {most} strings")
        if any(not v.strip() for v in values):
            raise ValueError("an empty text")
        return [encodable(v) for v in values]

    return Annotated[str | list[str], AfterValidator(as_list)]


class CompletionRequest(Sampling):
    prompt: one_or_many(16)


class ClassifyRequest(Request):
    input: one_or_many(256)
