"""The OpenAI request bodies the server accepts (the fields it honours; others are ignored, as
OpenAI's clients send some by default) and the checks that make a bad one a 400."""

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator


class Request(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1)


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str | list[TextPart]

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    include_usage: bool = False


class Sampling(Request):
    """What chat and completions share: limits, sampling, stop rule, streaming."""

    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)  # OpenAI's default; 0 is greedy
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = Field(None, validate_default=True)
    seed: int | None = None
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

    @model_validator(mode="after")
    def ends_with_user(self) -> "ChatRequest":
        if self.messages[-1].role != "user":
            raise ValueError("the last message must be the user's")
        if self.max_completion_tokens is not None:
            self.max_tokens = self.max_completion_tokens
        return self

    @property
    def turns(self) -> list[dict]:
        return [{"role": m.role, "content": m.text} for m in self.messages]


def one_or_many(most: int):
    """A string or a list of 1 to `most` strings, read as a list."""

    def as_list(value: str | list[str]) -> list[str]:
        values = [value] if isinstance(value, str) else value
        if not values or len(values) > most:
            raise ValueError(f"1 to {most} strings")
        return values

    return Annotated[str | list[str], AfterValidator(as_list)]


class CompletionRequest(Sampling):
    prompt: one_or_many(16)


class ClassifyRequest(Request):
    input: one_or_many(256)
