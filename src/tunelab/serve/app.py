"""The OpenAI-compatible HTTP API over a catalog of runs (FastAPI): the routes, and the state
behind them. Every answer that is not a success is a 4xx (or, for a failure inside the model, a
5xx) with OpenAI's error body (serve/errors.py); no request stops the server."""

import asyncio
import threading
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.responses import PlainTextResponse

from tunelab.errors import TunelabError
from tunelab.serve.catalog import Catalog, Served
from tunelab.serve.engine import BatchEngine, EngineLimits, QueueFull
from tunelab.serve.errors import ApiError, install_error_handlers
from tunelab.serve.metrics import ServerMetrics
from tunelab.serve.middleware import BodyLimit, RequestMetrics
from tunelab.serve.responses import choice, envelope, sse_stream, usage, wait_done
from tunelab.serve.rows import Job, refuse
from tunelab.serve.schemas import ChatRequest, ClassifyRequest, CompletionRequest, Sampling
from tunelab.tasks.classify.metrics import classify_with
from tunelab.tasks.generative.scope_guard import GuardRouting


@dataclass(frozen=True)
class ServeLimits:
    engine: EngineLimits = field(default_factory=EngineLimits)
    max_tokens: int = 512  # the most tokens one answer may ask for
    max_body_bytes: int = 1_000_000
    api_key: str | None = None


class Server:
    """The state behind the routes: the runs, the engine, the limits, the counters."""

    def __init__(self, catalog: Catalog, limits: ServeLimits):
        self.catalog, self.limits = catalog, limits
        self.metrics = ServerMetrics()
        self.lock = threading.Lock()  # one forward pass at a time: the CPU cores are shared
        pools = {id(s.pool): s.pool for s in catalog.models.values() if s.kind == "generate"}
        self.engine = BatchEngine(pools, limits.engine, self.lock)
        self.engine.on_batch = self.metrics.observe_batch

    def model(self, name: str, kind: str) -> Served:
        served = self.catalog.get(name)
        if served is None:
            raise ApiError(
                404,
                f"model '{name}' is not served here; see /v1/models",
                "model",
                "model_not_found",
            )
        if served.kind != kind:
            use = "/v1/classify" if served.kind == "classify" else "/v1/chat/completions"
            raise ApiError(400, f"model '{name}' is a {served.kind} model; use {use}", "model")
        return served

    def job(self, served: Served, prompt: str, body: Sampling) -> Job:
        ids = served.tokenizer(prompt, add_special_tokens=served.adds_special_tokens)["input_ids"]
        if not ids:
            raise ApiError(400, "the prompt is empty", "prompt")
        max_tokens = body.max_tokens or min(served.default_max_tokens, self.limits.max_tokens)
        if max_tokens > self.limits.max_tokens:
            raise ApiError(400, f"max_tokens: at most {self.limits.max_tokens}", "max_tokens")
        if len(ids) + max_tokens > served.pool.context:
            raise ApiError(
                400,
                f"the prompt ({len(ids)} tokens) plus max_tokens ({max_tokens}) exceeds the "
                f"model's context of {served.pool.context} tokens",
                "messages",
                "context_length_exceeded",
            )
        return Job(
            prompt_ids=ids,
            pool_key=id(served.pool),
            adapter=served.adapter,
            tokenizer=served.tokenizer,
            max_tokens=max_tokens,
            temperature=body.temperature,
            top_p=body.top_p,
            seed=body.seed,
            stop=body.stop,
            loop=asyncio.get_running_loop(),
            events=asyncio.Queue(),
        )

    async def route(self, served: Served, turns: list[dict], prompt: str) -> GuardRouting:
        """The run's scope guard on the user's last message (one classifier pass, in a thread)."""
        question = next((t["content"] for t in reversed(turns) if t["role"] == "user"), "")
        adds = served.adds_special_tokens

        def run() -> GuardRouting:
            with self.lock:
                return served.guard.route([question], [prompt], served.tokenizer, adds)

        return await anyio.to_thread.run_sync(run)

    def submit(self, job: Job) -> None:
        try:
            self.engine.submit(job)
        except QueueFull:
            raise ApiError(429, "the server is busy; retry shortly", retry_after="1") from None

    async def answer(
        self, jobs: list[Job], body: Sampling, request: Request, chat: bool, submit: bool = True
    ):
        """The jobs' replies as one response, or the first job's as an event stream; `submit`
        False: the jobs are already done (the scope guard's refusal)."""
        request_id = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        for job in jobs if submit else []:
            self.submit(job)
        if body.stream:
            return sse_stream(jobs[0], body, request_id, chat)
        for job in jobs:
            await wait_done(job, request)
        choices = [choice(i, job, body if chat else None) for i, job in enumerate(jobs)]
        kind = "chat.completion" if chat else "text_completion"
        return {**envelope(kind, body.model, choices, request_id), "usage": usage(jobs)}


def build_router(server: Server) -> APIRouter:
    def check_key(authorization: str | None = Header(None)) -> None:
        key = server.limits.api_key
        if key is not None and authorization != f"Bearer {key}":
            raise ApiError(401, "a valid API key is needed (Authorization: Bearer KEY)")

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(check_key)])

    @v1.get("/models")
    async def models():
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "tunelab", "kind": s.kind}
            for name, s in server.catalog.models.items()
        ]
        return {"object": "list", "data": data}

    @v1.post("/chat/completions")
    async def chat(body: ChatRequest, request: Request):
        served = server.model(body.model, "generate")
        try:
            prompt = served.chat_prompt(body.turns, body.offered_tools) + body.call_opening
        except TunelabError as exc:
            raise ApiError(400, str(exc), "messages") from None
        job = server.job(served, prompt, body)
        if served.guard is not None:  # the scope guard's policy, as `tunelab chat` applies it
            routing = await server.route(served, body.turns, prompt)
            if routing.refused[0]:
                refuse(job, routing.refusal)  # the LM is never asked
                return await server.answer([job], body, request, chat=True, submit=False)
            job.banned_opening = routing.banned_opening
        return await server.answer([job], body, request, chat=True)

    @v1.post("/completions")
    async def completions(body: CompletionRequest, request: Request):
        served = server.model(body.model, "generate")
        if body.stream and len(body.prompt) > 1:
            raise ApiError(400, "stream takes one prompt", "prompt")
        jobs = [server.job(served, prompt, body) for prompt in body.prompt]
        return await server.answer(jobs, body, request, chat=False)

    @v1.post("/classify")
    async def classify(body: ClassifyRequest):
        served = server.model(body.model, "classify")

        def run() -> list[dict]:
            with server.lock:
                return classify_with(served.pool.model, served.tokenizer, served.record, body.input)

        results = await anyio.to_thread.run_sync(run)
        data = [
            {"index": i, "label": r["label"], "probabilities": r["probs"]}
            for i, r in enumerate(results)
        ]
        return {"object": "list", "model": body.model, "data": data}

    return v1


def create_app(catalog: Catalog, limits: ServeLimits | None = None) -> FastAPI:
    server = Server(catalog, limits or ServeLimits())

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        server.engine.start()
        yield
        server.engine.stop()

    app = FastAPI(title="tunelab", lifespan=lifespan)
    app.state.server = server
    install_error_handlers(app)
    app.include_router(build_router(server))

    @app.get("/health")
    async def health():
        return {"status": "ok", "models": list(catalog.models), "queue_depth": server.engine.depth}

    @app.get("/metrics")
    async def metrics():
        return PlainTextResponse(
            server.metrics.text(server.engine.depth), media_type="text/plain; version=0.0.4"
        )

    app.add_middleware(RequestMetrics, metrics=server.metrics)
    app.add_middleware(BodyLimit, limit=server.limits.max_body_bytes)
    return app
