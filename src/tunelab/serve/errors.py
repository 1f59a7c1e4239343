"""OpenAI's error body for every refused request: {"error": {"message", "type", "param",
"code"}}, so that a client's SDK raises its usual exception and no request shows a traceback."""

import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class ApiError(Exception):
    """A request the server refuses, with the HTTP status and OpenAI's error fields."""

    def __init__(self, status: int, message: str, param: str | None = None, code=None, **headers):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = {k.replace("_", "-"): v for k, v in headers.items()}


ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error"}


def error_body(status: int, message: str, param=None, code=None, headers=None) -> JSONResponse:
    kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    error = {"message": message, "type": kind, "param": param, "code": code}
    return JSONResponse({"error": error}, status_code=status, headers=headers)


# the steps pydantic adds to a location for the branch of a union it tried ("input.str",
# "prompt.list[str]", "function-after[...]"): not fields a client can find in its request
UNION_BRANCH = re.compile(r"^(str|int|float|bool|[a-z-]+\[.*\])$")


def first_problem(exc: RequestValidationError) -> tuple[str, str]:
    """The first validation error as (where, message): 'messages.0.role', 'Input should be ...'."""
    problem = exc.errors()[0]
    if problem["type"] == "json_invalid":  # its location is a character offset, not a field
        return "body", f"not valid JSON ({problem.get('ctx', {}).get('error', problem['msg'])})"
    steps = [str(p) for p in problem["loc"] if p != "body" and not UNION_BRANCH.match(str(p))]
    return ".".join(steps) or "body", problem["msg"]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError):
        return error_body(exc.status, exc.message, exc.param, exc.code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError):
        where, message = first_problem(exc)
        return error_body(400, f"{where}: {message}", param=where)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException):
        return error_body(exc.status_code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception):  # a bug of ours, still an error body
        return error_body(500, f"internal error: {type(exc).__name__}: {exc}".splitlines()[0])
