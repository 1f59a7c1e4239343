"""`tunelab serve`'s own flags, refused in one line before any run loads (issue 36): an empty
API key, a port out of range or in use, a served name a client cannot ask for."""

import socket

import pytest
from tests.helpers import assert_one_line_error, run_cli


def test_an_empty_api_key_is_refused_before_serving():
    """Issue 36: `--api-key ''` started a server no client could use (401 for everyone)."""
    code, output = run_cli("serve", "no-such-run", "--api-key", "")
    assert_one_line_error(code, output, "--api-key: empty")


def test_a_port_out_of_range_or_in_use_is_one_line():
    """Issue 36: `--port 70000` was a traceback and a port in use only a uvicorn log line."""
    code, output = run_cli("serve", "no-such-run", "--port", "70000")
    assert code == 2 and "--port" in output and "Traceback" not in output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, output = run_cli("serve", "no-such-run", "--port", str(port))
    assert_one_line_error(code, output, f"--port {port}: cannot listen on 127.0.0.1")


@pytest.mark.parametrize("argument", ["=runs/x", "a/b=runs/x", "my model=runs/x", "_x=runs/x"])
def test_a_served_name_a_client_cannot_ask_for_is_refused(argument):
    """Issue 36: empty, slashed and spaced served names were accepted."""
    code, output = run_cli("serve", argument)
    assert_one_line_error(code, output, "cannot be a served name")
