"""Turning a finished or running job into OpenAI's response bodies and event streams."""

import asyncio
import json
import time

from fastapi import Request
from sse_starlette import EventSourceResponse

from tunelab.serve.errors import ApiError
from tunelab.serve.rows import Job
from tunelab.serve.schemas import Sampling


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
        async for kind_, value in visible_pieces(job, strip=chat):
            yield chunk({"content": value}) if kind_ == "text" else chunk({}, value)
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


def sse(payload: dict) -> dict:
    return {"data": json.dumps(payload)}


def choice(index: int, job: Job, chat: bool) -> dict:
    if chat:
        message = {"role": "assistant", "content": job.text.strip()}
        return {"index": index, "message": message, "finish_reason": job.finish_reason}
    return {"index": index, "text": job.text, "logprobs": None, "finish_reason": job.finish_reason}
