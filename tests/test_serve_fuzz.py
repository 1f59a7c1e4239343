"""Generated request bodies against a live `tunelab serve` (issue 36): hypothesis builds the
bodies of /v1/chat/completions, /v1/completions and /v1/classify from valid and hostile values of
every field the server reads (wrong types, NaN and infinities, 2**70, lone surrogates, empty and
oversized lists, tools and tool choices that do not match, bodies that are not objects or not
JSON). Each answer is a 200 of the right shape or a 4xx with a one-line error body, never a 500;
and a greedy request sent beside each hostile one gets the answer it gets alone."""

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers import train_tiny
from tests.lm_helpers import sft_overrides
from tests.serve_helpers import live_server

from tunelab.pipeline import load_config, run
from tunelab.serve.app import ServeLimits
from tunelab.serve.catalog import load_catalog
from tunelab.serve.engine import EngineLimits

FUZZ = settings(
    max_examples=50,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
MATE = {
    "model": "chat",
    "messages": [{"role": "user", "content": "Where does the cat sleep?"}],
    "max_tokens": 6,
    "temperature": 0,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_dirs, toy_csv):
    root = tmp_path_factory.mktemp("serve_fuzz")
    chat = root / "chat"
    chat.mkdir()
    run(load_config(None, sft_overrides(chat, "lora", "train.epochs=1")))
    train_tiny(model_dirs["bert"], toy_csv, root / "classifier", method="head")
    limits = ServeLimits(engine=EngineLimits(wait_s=0.05), max_tokens=16, max_body_bytes=20_000)
    catalog = load_catalog([f"chat={chat / 'run'}", f"sentiment={root / 'classifier'}"])
    with (
        live_server(catalog, limits) as (url, _),
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        alone = client.post("/v1/chat/completions", json=MATE).json()
        yield client, alone["choices"][0]["message"]["content"]


LONE = "\ud800"
TEXT = st.sampled_from(["", " ", "hello", "Who is Tom?", LONE, "a" * 3000, "<tool_call>", "\x00"])
NUMBER = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2**63, 2**64, 1e-300, 1e308, -0.0, 0.5, 2.0000001]),
    st.sampled_from([float("nan"), float("inf"), float("-inf")]),
)
HOSTILE = st.one_of(st.none(), st.booleans(), NUMBER, TEXT, st.just([]), st.just({}), st.just([1]))


def sane_or(sane: st.SearchStrategy) -> st.SearchStrategy:
    """Three times in four a value a client would send (so that bodies reach the model), else a
    hostile one (drawn in two steps: st.one_of would flatten HOSTILE's branches into its own)."""
    return st.integers(0, 3).flatmap(lambda draw: HOSTILE if draw == 0 else sane)


FUNCTION = st.fixed_dictionaries(
    {"name": sane_or(st.sampled_from(["get_weather", "x" * 80]))},
    optional={"parameters": sane_or(st.just({"type": "object"})), "description": TEXT},
)
TOOL = sane_or(st.fixed_dictionaries({"type": st.just("function"), "function": FUNCTION}))
CALLED = st.fixed_dictionaries(
    {
        "name": sane_or(st.just("get_weather")),
        "arguments": sane_or(st.sampled_from(['{"city": "Oslo"}', "{", "[]", "null"])),
    }
)
CALL = st.fixed_dictionaries(
    {"type": st.just("function"), "function": CALLED}, optional={"id": TEXT}
)
PART = st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url"]), "text": TEXT})
ROLE = sane_or(st.sampled_from(["system", "user", "assistant", "tool", "developer"]))
MESSAGE = sane_or(
    st.fixed_dictionaries(
        {"role": ROLE, "content": sane_or(TEXT | st.lists(PART, max_size=2))},
        optional={
            "tool_calls": sane_or(st.lists(CALL, max_size=2)),
            "tool_call_id": TEXT,
            "reasoning_content": TEXT,
        },
    )
)
QUESTION = {"role": "user", "content": "Where does the cat sleep?"}
SAMPLING = {
    "max_tokens": sane_or(st.integers(1, 16)),
    "temperature": sane_or(st.floats(0, 2)),
    "top_p": sane_or(st.floats(0, 1, exclude_min=True)),
    "seed": sane_or(st.integers(-(2**63), 2**64 - 1)),
    "stop": sane_or(st.lists(st.sampled_from(["\n", ".", "cat"]), max_size=6)) | TEXT,
    "stream": sane_or(st.booleans()),
    "stream_options": sane_or(st.fixed_dictionaries({"include_usage": st.booleans()})),
    "n": sane_or(st.just(1)),
    "logprobs": HOSTILE,
}
CHAT_FIELDS = {
    **SAMPLING,
    "model": sane_or(st.sampled_from(["chat", "sentiment", "stories260K", "nope", "chat/../x"])),
    "messages": sane_or(st.lists(MESSAGE, max_size=3).map(lambda turns: [*turns, QUESTION])),
    "max_completion_tokens": sane_or(st.integers(1, 16)),
    "tools": sane_or(st.lists(TOOL, max_size=3)),
    "tool_choice": sane_or(
        st.sampled_from(["none", "auto", "required", "any"])
        | st.fixed_dictionaries({"type": st.just("function"), "function": FUNCTION})
    ),
}
COMPLETION_FIELDS = {
    **SAMPLING,
    "model": CHAT_FIELDS["model"],
    "prompt": sane_or(TEXT | st.lists(sane_or(TEXT), max_size=20)),
}
CLASSIFY_FIELDS = {
    "model": sane_or(st.sampled_from(["sentiment", "chat", "nope"])),
    "input": sane_or(TEXT | st.lists(sane_or(TEXT), max_size=300)),
}


def changed(valid: dict, fields: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    """A valid body with one to three of its fields set by the fuzzer (or deleted: None)."""
    change = st.sampled_from(sorted(fields)).flatmap(
        lambda key: st.tuples(st.just(key), fields[key])
    )
    return st.lists(change, min_size=1, max_size=3).map(lambda pairs: {**valid, **dict(pairs)})


CHAT = changed({**MATE, "model": "chat"}, CHAT_FIELDS)
COMPLETION = changed({"model": "chat", "prompt": "Once upon", "max_tokens": 6}, COMPLETION_FIELDS)
CLASSIFY = changed({"model": "sentiment", "input": "a good film"}, CLASSIFY_FIELDS)
NOT_AN_OBJECT = st.sampled_from([b"", b"{", b"[]", b"null", b'"text"', b"1e999", b"\xff\xfe"])


def encoded(body) -> bytes:
    """JSON as a lenient client writes it: NaN and Infinity literals, surrogates escaped."""
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def assert_answer_or_clean_error(response: httpx.Response, body, streamed: bool) -> None:
    assert response.status_code < 500, response.text[:300]
    if response.status_code >= 400:
        error = response.json()["error"]
        message, param = error["message"], error["param"] or "body"
        assert message and "\n" not in message and "Traceback" not in message, message
        # the field it names is one the request has ("0: JSON decode error" named none)
        top = param.split(".")[0]
        named = isinstance(body, dict) and top in body
        assert top == "body" or named or message.endswith("Field required"), error
        return
    if not streamed:
        assert response.json()["choices" if "choices" in response.text else "data"]
        return
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]", response.text[-300:]
    assert not any("error" in json.loads(e) for e in events[:-1]), response.text[-300:]


def post_beside_a_mate(client: httpx.Client, path: str, body, alone: str) -> None:
    """The hostile body and a greedy chat request at once (they share the engine's batch)."""
    headers = {"content-type": "application/json"}
    with ThreadPoolExecutor(2) as pool:
        hostile = pool.submit(client.post, path, content=encoded(body), headers=headers)
        mate = pool.submit(client.post, "/v1/chat/completions", json=MATE)
        response, mate_response = hostile.result(), mate.result()
    streamed = isinstance(body, dict) and body.get("stream") is True
    assert_answer_or_clean_error(response, body, streamed)
    assert mate_response.status_code == 200, mate_response.text[:300]
    assert mate_response.json()["choices"][0]["message"]["content"] == alone


@FUZZ
@given(CHAT | NOT_AN_OBJECT)
def test_fuzzed_chat_requests(server, body):
    post_beside_a_mate(*server[:1], "/v1/chat/completions", body, server[1])


@FUZZ
@given(COMPLETION | NOT_AN_OBJECT)
def test_fuzzed_completion_requests(server, body):
    post_beside_a_mate(*server[:1], "/v1/completions", body, server[1])


@FUZZ
@given(CLASSIFY | NOT_AN_OBJECT)
def test_fuzzed_classify_requests(server, body):
    post_beside_a_mate(*server[:1], "/v1/classify", body, server[1])
