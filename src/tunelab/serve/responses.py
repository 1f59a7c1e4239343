"""Turning a finished or running job into OpenAI's response bodies and event streams."""

import asyncio
import json
import time
import uuid

from fastapi import Request
from sse_starlette import EventSourceResponse

from tunelab.data.tool_calls import (
    CALL_OPEN,
    THINK_CLOSE,
    THINK_OPEN,
    ToolCall,
    parse_reply,
    split_reasoning,
)
from tunelab.serve.errors import ApiError
from tunelab.serve.rows import Job
from tunelab.serve.schemas import ChatRequest, Sampling


async def wait_done(job: Job, request: Request) -> None:
    """Until the job's answer is complete; a client that leaves cancels it."""
    while True:
        try:
            kind, value = await asyncio.wait_for(job.events.get(), timeout=0.5)
        except TimeoutError:
            if await request.is_disconnected():
                job.cancelled.set()
                raise ApiError(499, "client closed the request") from None
            continue
        if kind == "error":
            raise ApiError(500, value)
        if kind == "done":
            return


async def stream_events(job: Job):
    """The job's ("text", piece) events until it ends; cancels the job if the client leaves."""
    try:
        while True:
            kind, value = await job.events.get()
            if kind == "error":
                raise ApiError(500, value)
            yield kind, value
            if kind == "done":
                return
    finally:
        if job.finish_reason is None:
            job.cancelled.set()


def usage(jobs: list[Job]) -> dict:
    prompt = sum(len(job.prompt_ids) for job in jobs)
    completion = sum(len(job.tokens) for job in jobs)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def envelope(kind: str, name: str, choices: list[dict], request_id: str) -> dict:
    return {
        "id": request_id,
        "object": kind,
        "created": int(time.time()),
        "model": name,
        "choices": choices,
    }


def sse_stream(job: Job, body: Sampling, request_id: str, chat: bool) -> EventSourceResponse:
    """OpenAI's stream: chunks of text, a last chunk with finish_reason, usage if asked, [DONE]."""
    kind = "chat.completion.chunk" if chat else "text_completion"

    def chunk(delta: dict, finish: str | None = None) -> dict:
        if chat:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
        else:
            text = delta.get("content", "")
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        return sse(envelope(kind, body.model, [choice], request_id))

    async def events():
        if chat:
            yield chunk({"role": "assistant", "content": ""})
        pieces = visible_pieces(job, strip=chat)
        if chat and not body.call_opening:  # a forced call cannot open with reasoning
            pieces = with_reasoning(pieces)
        if chat and body.offered_tools is not None:
            pieces = with_tool_calls(pieces, body)
        async for kind_, value in pieces:
            if kind_ == "text":
                yield chunk({"content": value})
            elif kind_ == "reasoning":
                yield chunk({"reasoning_content": value})
            elif kind_ == "tool_calls":
                yield chunk({"tool_calls": value})
            else:
                yield chunk({}, value)
        if body.include_usage:
            yield sse({**envelope(kind, body.model, [], request_id), "usage": usage([job])})
        yield {"data": "[DONE]"}

    return EventSourceResponse(events())


async def visible_pieces(job: Job, strip: bool):
    """The job's events with a chat answer stripped as `generate` strips it: leading whitespace
    dropped, trailing whitespace held until more text follows it."""
    started, pending = not strip, ""
    async for kind, value in stream_events(job):
        if kind != "text":
            yield kind, value
            continue
        text = pending + (value if started else value.lstrip())
        started = started or bool(text)
        pending = text[len(text.rstrip()) :] if strip else ""
        if text[: len(text) - len(pending)]:
            yield kind, text[: len(text) - len(pending)]


def unsure_tail(text: str, marker: str) -> int:
    """How many of `text`'s last characters may be the start of `marker` (held back until the
    next piece says whether they are)."""
    longest = min(len(text), len(marker) - 1)
    return next((k for k in range(longest, 0, -1) if marker.startswith(text[-k:])), 0)


async def with_reasoning(pieces):
    """A chat stream whose reply opens with <think>...</think>: the reasoning goes out as
    `reasoning_content` deltas and the rest as content, as DeepSeek's API and vLLM's reasoning
    parsers stream them (chat_reply splits a finished reply the same way). A reply that does not
    open with <think> streams as it was."""
    held, state, started = "", "opening", False  # started: this part has sent text
    async for kind, value in pieces:
        if kind != "text":
            rest = held.strip() if state == "thinking" else held
            if rest:
                yield ("reasoning" if state == "thinking" else "text"), rest
            yield kind, value
            return
        held += value
        if state == "opening":
            if THINK_OPEN.startswith(held):
                continue  # may still become <think>
            thinking = held.startswith(THINK_OPEN)
            state, started = ("thinking", False) if thinking else ("answering", True)
            held = held[len(THINK_OPEN) :] if thinking else held
        if state == "thinking":
            held = held if started else held.lstrip()
            end = held.find(THINK_CLOSE)
            cut = end if end >= 0 else len(held) - unsure_tail(held, THINK_CLOSE)
            sent = held[:cut].rstrip()  # whitespace may be the last before </think>: held
            if sent:
                yield "reasoning", sent
                started = True
            if end < 0:
                held = held[len(sent) :]
                continue
            held, state, started = held[end + len(THINK_CLOSE) :], "answering", False
        held = held if started else held.lstrip()
        if held:
            yield "text", held
            held, started = "", True


async def with_tool_calls(pieces, body: ChatRequest):
    """A chat stream where tools were offered: text streams until a `<tool_call>` may begin;
    from there the reply is held, and its calls go out as one `tool_calls` delta (each call
    whole, with its id and index, as OpenAI's clients accumulate them) before finish_reason
    "tool_calls". Text that held no call is sent as it was."""
    held, streaming = body.call_opening, not body.call_opening
    async for kind, value in pieces:
        if kind == "reasoning":
            yield kind, value
            continue
        if kind != "text":
            _, calls = parse_reply(held)
            if calls:
                parts = [{"index": i, **c.as_openai(call_id())} for i, c in enumerate(calls)]
                yield "tool_calls", parts
                yield kind, "tool_calls"
            else:
                if held:
                    yield "text", held
                yield kind, value
            return
        if not streaming:
            held += value
            continue
        text = held + value
        start = text.find(CALL_OPEN)
        if start < 0:  # hold back an ending that may be the start of `<tool_call>`
            start = next((i for i in range(len(text)) if CALL_OPEN.startswith(text[i:])), len(text))
            streaming = True
        else:
            streaming = False
        if text[:start]:
            yield "text", text[:start]
        held = text[start:]


def sse(payload: dict) -> dict:
    return {"data": json.dumps(payload)}


def choice(index: int, job: Job, chat: ChatRequest | None) -> dict:
    """A finished job as a choice: a chat message (with its tool calls) or a completion's text."""
    if chat is None:
        return {
            "index": index,
            "text": job.text,
            "logprobs": None,
            "finish_reason": job.finish_reason,
        }
    message, calls = chat_reply(job.text, chat)
    if calls:
        message["tool_calls"] = [call.as_openai(call_id()) for call in calls]
    finish = "tool_calls" if calls else job.finish_reason
    return {"index": index, "message": message, "finish_reason": finish}


def chat_reply(text: str, body: ChatRequest) -> tuple[dict, list[ToolCall]]:
    """The assistant's message and, where tools were offered, the calls its reply holds (the
    `<tool_call>` convention; the answer's forced opening put back in front). A reply that opens
    with <think>...</think> (a run trained on reasoning) has it as `reasoning_content`, as
    DeepSeek's API and vLLM's reasoning parsers return it."""
    reasoning, text = split_reasoning(body.call_opening + text)
    if reasoning is None and text.lstrip().startswith(THINK_OPEN):  # cut inside its reasoning
        reasoning, text = text.lstrip()[len(THINK_OPEN) :].strip(), ""  # as the stream sent it
    if body.offered_tools is None:
        message = {"role": "assistant", "content": text.strip()}
        calls = []
    else:
        content, calls = parse_reply(text)
        message = {"role": "assistant", "content": content or (None if calls else "")}
    return message | ({"reasoning_content": reasoning} if reasoning else {}), calls


def call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"
