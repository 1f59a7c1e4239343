"""Two small ASGI middlewares (plain ASGI, so streamed answers and disconnects pass through):
a cap on the request body, and the per-request counters of /metrics."""

import json
import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tunelab.serve.metrics import ServerMetrics

KNOWN_PATHS = {
    "/v1/models",
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/classify",
    "/health",
    "/metrics",
}


async def send_error(send: Send, status: int, message: str) -> None:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    body = json.dumps({"error": error}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(HTTPException):
    """An HTTPException, so that FastAPI's body reader passes it on to the error handler."""

    def __init__(self, message: str):
        super().__init__(413, message)


class HttpMiddleware:
    """Passes lifespan events through; a subclass handles the HTTP requests."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.handle(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class BodyLimit(HttpMiddleware):
    """413 for a body over the limit, told by its Content-Length or found while reading it."""

    def __init__(self, app: ASGIApp, limit: int):
        super().__init__(app)
        self.limit = limit

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        message = f"the request body is over {self.limit} bytes"
        if not declared.isdigit() or int(declared) > self.limit:
            await send_error(send, 413, message)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            event = await receive()
            received += len(event.get("body", b""))
            if received > self.limit:
                raise BodyTooLarge(message)
            return event

        async def tracking_send(event: Message) -> None:
            nonlocal started
            started = started or event["type"] == "http.response.start"
            await send(event)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await send_error(send, 413, message)


class RequestMetrics(HttpMiddleware):
    """Counts each answer by path and status, and times it to its first byte."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics):
        super().__init__(app)
        self.metrics = metrics

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["path"] in KNOWN_PATHS else "other"
        start = time.perf_counter()

        async def timed_send(event: Message) -> None:
            if event["type"] == "http.response.start":
                self.metrics.observe_request(path, event["status"], time.perf_counter() - start)
            await send(event)

        await self.app(scope, receive, timed_send)
