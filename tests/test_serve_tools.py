"""Tool calls through `tunelab serve`: the official `openai` client runs its tool loop (a call,
the tool's result, the final answer) against a tiny real model trained in the test on rows with
tools, streamed and not; tool_choice and bad tool requests."""

import json

import httpx
import openai
import pytest
from tests.lm_helpers import STORIES, write_jsonl
from tests.serve_helpers import live_server

from tunelab.pipeline import load_config, run
from tunelab.serve.app import ServeLimits
from tunelab.serve.catalog import load_catalog

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
CITIES = {"Paris": "18 C", "Rome": "25 C", "Oslo": "-3 C"}


def conversation(city: str) -> dict:
    call = {"name": "get_weather", "arguments": json.dumps({"city": city})}
    return {
        "tools": [WEATHER],
        "messages": [
            {"role": "user", "content": f"Weather in {city}?"},
            {"role": "assistant", "content": None, "tool_calls": [{"function": call}]},
            {"role": "tool", "content": CITIES[city]},
            {"role": "assistant", "content": f"It is {CITIES[city]} in {city}."},
        ],
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """stories260K trained to call get_weather for its three cities, then to answer with the
    result (it learns these conversations by heart)."""
    tmp = tmp_path_factory.mktemp("tools")
    data = write_jsonl(tmp / "train.jsonl", [conversation(c) for c in CITIES] * 4)
    overrides = [
        f"model.name={STORIES}",
        "task.name=sft",
        "task.template=chat",
        f"data.path={data}",
        f"data.test_path={data}",
        "data.split=[0.9,0.1,0.0]",
        "data.max_length=1024",
        "method.name=full",
        "train.epochs=20",
        "train.batch_size=4",
        "train.lr=3e-3",
        "train.weight_decay=0.0",
        "eval.generate_limit=1",
        f"output.dir={tmp / 'run'}",
    ]
    run(load_config(None, overrides))
    limits = ServeLimits(max_tokens=64, max_body_bytes=100_000)
    with live_server(load_catalog([f"weather={tmp / 'run'}"]), limits) as (url, _):
        yield url


@pytest.fixture
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0)


def ask(client, messages: list[dict], stream: bool, **options):
    """One chat request; a stream is put back together as the client's users do."""
    request = dict(model="weather", messages=messages, tools=[WEATHER], temperature=0)
    request |= {"max_tokens": 64} | options
    if not stream:
        reply = client.chat.completions.create(**request)
        return reply.choices[0].message, reply.choices[0].finish_reason
    content, calls, finish = "", {}, None
    for chunk in client.chat.completions.create(**request, stream=True):
        delta = chunk.choices[0].delta
        content += delta.content or ""
        for call in delta.tool_calls or []:
            entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += call.id or ""
            entry["name"] += (call.function.name or "") if call.function else ""
            entry["arguments"] += (call.function.arguments or "") if call.function else ""
        finish = chunk.choices[0].finish_reason or finish
    message = {"content": content or None, "tool_calls": [calls[i] for i in sorted(calls)]}
    return message, finish


def calls_of(message) -> list[dict]:
    if isinstance(message, dict):
        return message["tool_calls"]
    return [
        {"id": c.id, "name": c.function.name, "arguments": c.function.arguments}
        for c in message.tool_calls or []
    ]


@pytest.mark.parametrize("stream", [False, True])
def test_the_openai_client_runs_its_tool_loop(client, stream):
    messages = [{"role": "user", "content": "Weather in Rome?"}]
    message, finish = ask(client, messages, stream)
    calls = calls_of(message)
    assert finish == "tool_calls" and len(calls) == 1
    assert calls[0]["name"] == "get_weather" and calls[0]["id"].startswith("call_")
    arguments = json.loads(calls[0]["arguments"])
    assert arguments == {"city": "Rome"}
    # the application runs the tool and sends its result back, as the client's loop does
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": calls[0]["id"],
                "type": "function",
                "function": {k: calls[0][k] for k in ("name", "arguments")},
            }
        ],
    }
    result = {"role": "tool", "tool_call_id": calls[0]["id"], "content": CITIES["Rome"]}
    final, finish = ask(client, [*messages, assistant, result], stream, max_tokens=40)
    content = final["content"] if isinstance(final, dict) else final.content
    assert finish == "stop" and content == "It is 25 C in Rome."
    assert not calls_of(final)


def test_tool_choice_none_hides_the_tools_and_a_named_choice_forces_the_call(client):
    messages = [{"role": "user", "content": "Weather in Oslo?"}]
    message, finish = ask(client, messages, False, tool_choice="none")
    assert finish != "tool_calls" and not message.tool_calls
    named = {"type": "function", "function": {"name": "get_weather"}}
    message, finish = ask(client, messages, False, tool_choice=named)
    assert finish == "tool_calls"
    assert json.loads(message.tool_calls[0].function.arguments) == {"city": "Oslo"}


@pytest.mark.parametrize(
    "change,where",
    [
        ({"tool_choice": "required", "tools": None}, "tool_choice"),
        ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "nope"),
        ({"tools": [{"type": "function", "function": {"description": "no name"}}]}, "tools"),
        (
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{bad"},
                            }
                        ],
                    },
                    {"role": "tool", "content": "1", "tool_call_id": "c"},
                ]
            },
            "not JSON",
        ),
        ({"messages": [{"role": "tool"}]}, "content"),
    ],
)
def test_a_bad_tool_request_is_a_400_with_an_error_body(server, change, where):
    body = {"model": "weather", "messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER]}
    body = {k: v for k, v in (body | change).items() if v is not None}
    reply = httpx.post(f"{server}/v1/chat/completions", json=body, timeout=30)
    assert reply.status_code == 400, reply.text
    assert where in json.dumps(reply.json()["error"])
