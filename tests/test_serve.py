"""`tunelab serve` on tiny real models, through the official OpenAI client and raw HTTP: two
LoRA runs on the real stories260K share one base and are batched together, a classifier run
answers /v1/classify as `predict` does, and hostile requests get 4xx error bodies."""

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from tests.helpers import train_tiny
from tests.lm_helpers import QA, sft_overrides, write_jsonl
from tests.serve_helpers import live_server

from tunelab.assistant import load_assistant
from tunelab.inference import classify_texts
from tunelab.pipeline import load_config, run
from tunelab.serve.app import ServeLimits
from tunelab.serve.catalog import load_catalog
from tunelab.serve.engine import EngineLimits
from tunelab.serve.rows import Job

QUESTIONS = [q for q, _ in QA]
TOKENS = 12


def train_sft_lora(root, name: str, answers: list[str]) -> str:
    folder = root / name
    folder.mkdir()
    overrides = sft_overrides(
        folder, "lora", "train.epochs=8", "train.lr=0.01", f"output.dir={folder / 'run'}"
    )
    records = [{"question": q, "answer": a} for q, a in zip(QUESTIONS, answers, strict=True)]
    write_jsonl(folder / "train.jsonl", records * 4)  # the data sft_overrides pointed at
    run(load_config(None, overrides))
    return str(folder / "run")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, model_dirs, toy_csv) -> dict[str, str]:
    root = tmp_path_factory.mktemp("serve")
    classifier = root / "classifier"
    train_tiny(model_dirs["bert"], toy_csv, classifier, method="lora")
    return {
        "plain": train_sft_lora(root, "plain", [a for _, a in QA]),
        "reversed": train_sft_lora(root, "reversed", [a[::-1] for _, a in QA]),
        "sentiment": str(classifier),
    }


@pytest.fixture(scope="module")
def server(runs):
    # a 200 ms gathering window, so that concurrent requests surely share a batch
    limits = ServeLimits(engine=EngineLimits(wait_s=0.2), max_tokens=64, max_body_bytes=100_000)
    named = [f"{name}={path}" for name, path in runs.items()]
    with live_server(load_catalog(named), limits) as (url, state):
        yield url, state


@pytest.fixture
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server[0]}/v1", api_key="unused", max_retries=0)


def own_answers(run_dir: str) -> list[str]:
    """What `tunelab generate RUN --max-new-tokens 12` answers (greedy)."""
    return load_assistant(run_dir).answer(QUESTIONS, max_new_tokens=TOKENS)


def ask(client: openai.OpenAI, model: str, question: str, **options):
    return client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": question}],
        max_tokens=TOKENS,
        temperature=0,
        **options,
    )


def test_models_lists_every_run_and_the_shared_base(client, server):
    names = {m.id for m in client.models.list().data}
    assert names == {"plain", "reversed", "sentiment", "stories260K"}
    catalog = server[1].catalog
    # one copy of the base in memory for both LoRA runs and the base itself
    assert (
        catalog.get("plain").pool is catalog.get("reversed").pool is catalog.get("stories260K").pool
    )


def test_each_run_answers_as_its_own_generate_even_in_one_mixed_batch(client, server, runs):
    expected = {name: own_answers(runs[name]) for name in ("plain", "reversed")}
    assert expected["plain"] != expected["reversed"]  # the adapters differ, so routing shows
    metrics = server[1].metrics
    batches = metrics.value("tunelab_batch_rows_count")
    mixed = metrics.value("tunelab_mixed_adapter_batches_total")
    jobs = [(name, i) for name in expected for i in range(len(QUESTIONS))]
    with ThreadPoolExecutor(len(jobs)) as pool:
        replies = list(pool.map(lambda job: ask(client, job[0], QUESTIONS[job[1]]), jobs))
    for (name, i), reply in zip(jobs, replies, strict=True):
        assert reply.choices[0].message.content == expected[name][i], (name, i)
        assert reply.usage.completion_tokens <= TOKENS
    # fewer generate calls than requests, and both adapters' rows in at least one of them
    assert metrics.value("tunelab_batch_rows_count") - batches < len(jobs)
    assert metrics.value("tunelab_mixed_adapter_batches_total") > mixed


def test_a_streamed_answer_is_the_same_answer(client):
    whole = ask(client, "plain", QUESTIONS[1]).choices[0]
    stream = ask(client, "plain", QUESTIONS[1], stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.message.content
    assert chunks[-1].choices[0].finish_reason == whole.finish_reason
    assert len(chunks) > 3  # the answer came in pieces, not in one


def test_completions_sampling_seed_and_stop(client):
    def complete(**options):
        return client.completions.create(
            model="stories260K", prompt="Once upon a time", max_tokens=16, **options
        ).choices[0]

    greedy = complete(temperature=0)
    assert greedy.finish_reason == "length" and greedy.text.strip()
    sampled = [complete(temperature=1.0, seed=7).text for _ in range(2)]
    assert sampled[0] == sampled[1]  # a seed makes a sampled answer repeatable
    stop_word = greedy.text.split()[1]
    stopped = complete(temperature=0, stop=[stop_word])
    assert stopped.finish_reason == "stop"
    assert stopped.text == greedy.text[: greedy.text.index(stop_word)]


def test_classify_gives_the_figures_of_predict(server, runs):
    texts = ["a wonderful lovely film", "an awful boring plot", "the movie"]
    reply = httpx.post(
        f"{server[0]}/v1/classify", json={"model": "sentiment", "input": texts}
    ).json()
    expected = classify_texts(runs["sentiment"], texts)
    assert [d["label"] for d in reply["data"]] == [e["label"] for e in expected]
    assert [d["probabilities"] for d in reply["data"]] == [e["probs"] for e in expected]


CHAT = "/v1/chat/completions"
GOOD = {"model": "plain", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}


def with_(**changes) -> dict:
    return {**GOOD, **changes}


def without(key: str) -> dict:
    return {k: v for k, v in GOOD.items() if k != key}


HOSTILE_JSON = [
    ("missing model", CHAT, without("model")),
    ("empty model", CHAT, with_(model="")),
    ("model not a string", CHAT, with_(model=123)),
    ("unknown model", CHAT, with_(model="nope")),
    ("missing messages", CHAT, without("messages")),
    ("no messages", CHAT, with_(messages=[])),
    ("messages a string", CHAT, with_(messages="hi")),
    ("message without role", CHAT, with_(messages=[{"content": "hi"}])),
    ("unknown role", CHAT, with_(messages=[{"role": "robot", "content": "hi"}])),
    ("content a number", CHAT, with_(messages=[{"role": "user", "content": 5}])),
    ("content null", CHAT, with_(messages=[{"role": "user", "content": None}])),
    ("image part", CHAT, with_(messages=[{"role": "user", "content": [{"type": "image_url"}]}])),
    ("ends with assistant", CHAT, with_(messages=[{"role": "assistant", "content": "hi"}])),
    ("max_tokens 0", CHAT, with_(max_tokens=0)),
    ("max_tokens negative", CHAT, with_(max_tokens=-1)),
    ("max_tokens huge", CHAT, with_(max_tokens=10**9)),
    ("max_tokens over the cap", CHAT, with_(max_tokens=65)),
    ("max_tokens a word", CHAT, with_(max_tokens="ten")),
    ("max_tokens a fraction", CHAT, with_(max_tokens=1.5)),
    ("negative temperature", CHAT, with_(temperature=-1)),
    ("temperature over 2", CHAT, with_(temperature=3)),
    ("temperature a word", CHAT, with_(temperature="hot")),
    ("top_p 0", CHAT, with_(top_p=0)),
    ("top_p over 1", CHAT, with_(top_p=1.5)),
    ("five stops", CHAT, with_(stop=["a", "b", "c", "d", "e"])),
    ("empty stop", CHAT, with_(stop=[""])),
    ("stop a number", CHAT, with_(stop=5)),
    ("two answers", CHAT, with_(n=2)),
    ("stream a word", CHAT, with_(stream="maybe")),
    ("seed a word", CHAT, with_(seed="x")),
    ("seed 2**70", CHAT, with_(seed=2**70)),
    ("classify an empty text", "/v1/classify", {"model": "sentiment", "input": ["ok", " "]}),
    ("stream_options a word", CHAT, with_(stream_options="x")),
    ("prompt over the context", CHAT, with_(messages=[{"role": "user", "content": "hi " * 600}])),
    ("chat with a classifier", CHAT, with_(model="sentiment")),
    ("chat with a base without template", CHAT, with_(model="stories260K")),
    ("classify a generator", "/v1/classify", {"model": "plain", "input": "x"}),
    ("classify nothing", "/v1/classify", {"model": "sentiment", "input": []}),
    ("classify a number", "/v1/classify", {"model": "sentiment", "input": 5}),
    ("no prompts", "/v1/completions", {"model": "plain", "prompt": []}),
    ("missing prompt", "/v1/completions", {"model": "plain"}),
    (
        "stream two prompts",
        "/v1/completions",
        {"model": "plain", "prompt": ["a", "b"], "stream": True},
    ),
    ("a JSON array", CHAT, []),
    ("a JSON string", CHAT, "hello"),
    ("JSON null", CHAT, None),
]

HOSTILE_BYTES = [
    ("bad JSON", b"{bad"),
    (
        "a lone surrogate",
        b'{"model": "plain", "messages": [{"role": "user", "content": "a\\ud800b"}]}',
    ),
    ("empty body", b""),
    ("not UTF-8", b'{"model": "\xff\xfe"}'),
    ("deeply nested", b"[" * 100_000 + b"]" * 100_000),
    ("a body over the limit", b'{"model": "' + b"x" * 10_000_000 + b'"}'),
]


def assert_error_body(response: httpx.Response, case: str) -> None:
    assert 400 <= response.status_code < 500, (case, response.status_code, response.text)
    error = response.json()["error"]
    assert error["message"] and error["type"], case


@pytest.mark.parametrize("case,path,body", HOSTILE_JSON, ids=[c[0] for c in HOSTILE_JSON])
def test_a_malformed_request_gets_a_4xx_with_an_error_body(server, case, path, body):
    assert_error_body(httpx.post(f"{server[0]}{path}", json=body, timeout=30), case)


@pytest.mark.parametrize("case,raw", HOSTILE_BYTES, ids=[c[0] for c in HOSTILE_BYTES])
def test_a_broken_body_gets_a_4xx_with_an_error_body(server, case, raw):
    headers = {"content-type": "application/json"}
    response = httpx.post(f"{server[0]}{CHAT}", content=raw, headers=headers, timeout=60)
    assert_error_body(response, case)


def test_a_hostile_sampling_request_leaves_its_batch_mates_their_answers(client):
    """Issue 36: a temperature of 1e-30 overflowed the softmax and failed the whole batch."""
    hostile = {"temperature": 1e-30, "top_p": 1e-300, "seed": 2**63}
    options = [hostile, {"temperature": 0}, {"temperature": 0.7, "seed": 1}, {"temperature": 0}]

    def chat(option: dict):
        messages = [{"role": "user", "content": QUESTIONS[0]}]
        return client.chat.completions.create(
            model="plain", messages=messages, max_tokens=TOKENS, **option
        )

    with ThreadPoolExecutor(len(options)) as pool:
        replies = list(pool.map(chat, options))
    assert all(r.choices[0].finish_reason in ("stop", "length") for r in replies)
    # the hostile row's limit is greedy: the answer of temperature 0
    assert replies[0].choices[0].message.content == replies[1].choices[0].message.content


def test_wrong_method_and_path_are_4xx_and_the_server_still_answers(server, client):
    assert_error_body(httpx.get(f"{server[0]}{CHAT}"), "GET on a POST route")
    assert_error_body(httpx.get(f"{server[0]}/v1/nothing"), "unknown path")
    assert httpx.get(f"{server[0]}/health").json()["status"] == "ok"
    assert ask(client, "plain", QUESTIONS[0]).choices[0].message.content


def test_a_client_that_drops_mid_stream_stops_its_generation(server, client):
    metrics = server[1].metrics
    before = metrics.value("tunelab_generated_tokens_total")
    body = with_(max_tokens=64, messages=[{"role": "user", "content": "Tell a story"}])
    with httpx.stream("POST", f"{server[0]}{CHAT}", json={**body, "stream": True}) as response:
        for line in response.iter_lines():
            if '"content"' in line and '""' not in line:
                break  # the first real piece of text: hang up
    assert ask(client, "plain", QUESTIONS[0]).choices[0].message.content  # still serving
    dropped = metrics.value("tunelab_generated_tokens_total") - before - TOKENS
    assert dropped < 64  # the dropped request stopped before its max_tokens
    assert server[1].engine.depth == 0


def test_overload_is_a_429_with_retry_after(runs):
    from fastapi.testclient import TestClient

    from tunelab.serve.app import create_app

    limits = ServeLimits(engine=EngineLimits(queue_size=1))
    app = create_app(load_catalog([f"plain={runs['plain']}"]), limits)
    # the client is not entered, so the engine does not start and a waiting job stays waiting
    client = TestClient(app)
    app.state.server.submit(
        Job(prompt_ids=[1], pool_key=0, adapter=None, tokenizer=None, max_tokens=1)
    )
    response = client.post(CHAT, json=GOOD)
    assert response.status_code == 429 and response.headers["retry-after"] == "1"
    assert "busy" in response.json()["error"]["message"]


def test_an_api_key_is_required_when_set(runs):
    limits = ServeLimits(api_key="s3cret")
    with live_server(load_catalog([f"plain={runs['plain']}"]), limits) as (url, _):
        refused = httpx.get(f"{url}/v1/models")
        assert refused.status_code == 401 and refused.json()["error"]["message"]
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="s3cret", max_retries=0)
        assert "plain" in {m.id for m in client.models.list().data}
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()


def test_metrics_count_requests_errors_and_tokens(server, client):
    ask(client, "plain", QUESTIONS[0])
    httpx.post(f"{server[0]}{CHAT}", json=without("model"))
    text = httpx.get(f"{server[0]}/metrics").text
    for name in (
        "tunelab_requests_total",
        "tunelab_request_errors_total",
        "tunelab_request_seconds_bucket",
        "tunelab_generated_tokens_total",
        "tunelab_tokens_per_second",
        "tunelab_queue_depth",
    ):
        assert name in text, name
    assert json.loads(httpx.get(f"{server[0]}/health").text)["queue_depth"] == 0
