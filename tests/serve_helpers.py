"""A live tunelab server (or UI) on a free localhost port, in a thread of the test process."""

import threading
import time
from contextlib import contextmanager

import uvicorn

from tunelab.serve.app import ServeLimits, create_app
from tunelab.serve.catalog import Catalog


@contextmanager
def live_app(app):
    """Yields the base URL of `app` served on a free localhost port; stops it on exit."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def live_server(catalog: Catalog, limits: ServeLimits):
    """Yields the server's base URL and its state."""
    app = create_app(catalog, limits)
    with live_app(app) as url:
        yield url, app.state.server
