"""`tunelab ui`: FastAPI serving one page (static HTML + JS, no build step, nothing fetched from
the web) and a JSON API over the workspace. FastAPI rather than Gradio: field-level errors,
live curves and subprocess runs need control of the page that Gradio's components hide, and
the same TestClient / Playwright tests cover it. The API adds nothing of its own: it writes
configs, runs `tunelab` commands, and reads run folders."""

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from tunelab.errors import TunelabError
from tunelab.ui import jobs
from tunelab.ui.auth import AuthMiddleware
from tunelab.ui.compare_page import ComparePlan, compare_runs, compare_view, start_compare
from tunelab.ui.export_page import EXPORTS, export_view, start_export
from tunelab.ui.forms import FieldError, form_fields
from tunelab.ui.new_run import check_run, describe, resume_run, start_run
from tunelab.ui.playground import Playground
from tunelab.ui.runs import run_names, run_view
from tunelab.ui.uploads import TooLarge, save_upload
from tunelab.ui.workspace import Workspace

STATIC = Path(__file__).parent / "static"


class FormValues(BaseModel):
    values: dict[str, str | int | float | bool | None]


class CompareStart(FormValues):
    methods: list[str] = Field(min_length=2)
    seeds: str = ""  # "1,2,3": every method once per seed, with intervals and verdicts
    trials: int = Field(0, ge=0, le=50)  # learning-rate trials per method, on validation
    tokens: int | None = Field(None, gt=0)  # the same trained-token budget for every run


class ChatAsk(BaseModel):
    run: str
    message: str
    base: bool = False
    max_new_tokens: int = Field(64, ge=1, le=512)
    temperature: float = Field(0.0, ge=0.0, le=2.0)


class ClassifyAsk(BaseModel):
    run: str
    texts: list[str]


class ExportAsk(BaseModel):
    action: str


def error_response(exc: TunelabError) -> JSONResponse:
    """A one-line error; a form error also names its field (shown next to it)."""
    field = exc.field if isinstance(exc, FieldError) else None
    status = 413 if isinstance(exc, TooLarge) else 422 if field is not None else 400
    return JSONResponse({"error": str(exc), "field": field}, status_code=status)


def api_router(workspace: Workspace, playground: Playground) -> APIRouter:
    api = APIRouter(prefix="/api")
    api.include_router(run_routes(workspace))
    api.include_router(compare_routes(workspace))
    api.include_router(playground_routes(playground))
    return api


def run_routes(workspace: Workspace) -> APIRouter:
    """The form, the runs it starts, and what is done with a finished run."""
    api = APIRouter()

    @api.get("/form")
    def form(task: str = "classify", method: str = "lora"):
        return {
            "fields": [f.__dict__ for f in form_fields(workspace, task, method)],
            "exports": EXPORTS,
        }

    @api.post("/config")
    def config(body: FormValues):
        return describe(workspace, body.values)

    @api.post("/check")
    def check(body: FormValues):
        return check_run(workspace, body.values)

    @api.post("/runs", status_code=201)
    def create(body: FormValues):
        return start_run(workspace, body.values)

    @api.get("/runs")
    def runs():
        return [run_view(workspace, name) for name in run_names(workspace)]

    @api.get("/runs/{name}")
    def run(name: str):
        return {**run_view(workspace, name), "log": jobs.log_tail(workspace, "train", name)}

    @api.post("/runs/{name}/stop")
    def stop(name: str):
        jobs.stop(workspace, "train", name)
        return run_view(workspace, name)

    @api.post("/runs/{name}/resume")
    def resume(name: str):
        resume_run(workspace, name)
        return run_view(workspace, name)

    @api.post("/runs/{name}/export", status_code=201)
    def export(name: str, body: ExportAsk):
        return start_export(workspace, name, body.action)

    @api.get("/runs/{name}/export")
    def export_status(name: str):
        return export_view(workspace, name)

    @api.put("/upload", status_code=201)
    async def upload(request: Request, name: str):
        return await save_upload(workspace, request, name)

    return api


def compare_routes(workspace: Workspace) -> APIRouter:
    """Finished runs side by side, and seeded / searched experiments started from the form."""
    api = APIRouter()

    @api.post("/compare/runs")
    def compare_picked(runs: list[str]):
        return compare_runs(workspace, runs)

    @api.post("/compare", status_code=201)
    def compare_start(body: CompareStart):
        plan = ComparePlan(body.methods, body.seeds, body.trials, body.tokens)
        return start_compare(workspace, body.values, plan)

    @api.get("/compare/{name}")
    def compare_status(name: str):
        return compare_view(workspace, name)

    return api


def playground_routes(playground: Playground) -> APIRouter:
    """Asking a finished run (or its base) questions or texts to classify."""
    api = APIRouter()

    @api.post("/chat")
    def chat(body: ChatAsk):
        sampling = {"max_new_tokens": body.max_new_tokens, "temperature": body.temperature}
        pieces = playground.chat(body.run, body.message, body.base, sampling)
        first = next(pieces, "")  # errors before the first token are a 4xx, not a broken stream
        return StreamingResponse(prepend(first, pieces), media_type="text/plain; charset=utf-8")

    @api.post("/classify")
    def classify(body: ClassifyAsk):
        return playground.classify(body.run, body.texts)

    return api


def invalid_body(exc: RequestValidationError) -> JSONResponse:
    """A request body FastAPI cannot validate: one line naming the field (the form shows it by
    the field of that name), not FastAPI's list of error objects."""
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"][1:]) or None
    message = f"{field}: {first['msg']}" if field else first["msg"]
    return JSONResponse({"error": message, "field": field}, status_code=422)


def prepend(first: str, rest):
    yield first
    yield from rest


def build_app(workspace: Workspace, auth: str | None = None) -> FastAPI:
    app = FastAPI(title="tunelab ui", docs_url=None, redoc_url=None)
    app.add_exception_handler(TunelabError, lambda request, exc: error_response(exc))
    app.add_exception_handler(RequestValidationError, lambda request, exc: invalid_body(exc))
    app.include_router(api_router(workspace, Playground(workspace)))

    @app.get("/files/{path:path}")
    def files(path: str):
        """Run folders' reports and plots (read-only, inside the workspace)."""
        target = workspace.inside(path)
        if not target.is_file():
            return JSONResponse({"error": f"{path}: no such file"}, status_code=404)
        return FileResponse(target)

    @app.get("/")
    def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if auth:
        app.add_middleware(AuthMiddleware, secret=auth)
    return app
