"""`tunelab ui --auth`: a token (`Bearer TOKEN`, or `/?token=TOKEN` once, which sets a cookie)
or a user:password pair (HTTP Basic: the browser asks). Needed whenever the UI listens beyond
this machine; localhost alone needs none."""

import base64
import secrets

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse

COOKIE = "tunelab_auth"


MIN_SECRET = 8  # characters of a token or a password: `--auth ':'` or `x` guarded nothing


def check_secret(secret: str) -> None:
    """A token, or user:password, worth the name: both parts given, the secret 8+ characters."""
    from tunelab.errors import TunelabError

    user, colon, password = secret.partition(":")
    if colon and not user:
        raise TunelabError("--auth: user:password needs a user name before the colon")
    if len(password if colon else secret) < MIN_SECRET or not secret.strip():
        what = "the password" if colon else "the token"
        raise TunelabError(f"--auth: {what} needs at least {MIN_SECRET} characters")


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1")


class AuthMiddleware(BaseHTTPMiddleware):
    def __init__(self, app, secret: str):
        super().__init__(app)
        self.secret = secret
        self.basic = ":" in secret

    def allowed(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if self.basic:
            try:
                given = base64.b64decode(value).decode() if scheme.lower() == "basic" else ""
            except (ValueError, UnicodeDecodeError):
                return False
            return secrets.compare_digest(given, self.secret)
        given = value if scheme.lower() == "bearer" else request.cookies.get(COOKIE, "")
        return secrets.compare_digest(given, self.secret)

    async def dispatch(self, request: Request, call_next):
        token = request.query_params.get("token")
        if not self.basic and token is not None and secrets.compare_digest(token, self.secret):
            response = RedirectResponse(request.url.path)
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
            return response
        if self.allowed(request):
            return await call_next(request)
        headers = {"WWW-Authenticate": 'Basic realm="tunelab"'} if self.basic else {}
        message = "sign in (user:password)" if self.basic else "open the page with ?token=TOKEN"
        return JSONResponse(
            {"error": f"not signed in: {message}"}, status_code=401, headers=headers
        )
