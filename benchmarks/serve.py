"""Serving benchmarks, against a live `tunelab serve` process on localhost (it stops by itself).

throughput: the seed-003 assistant at concurrency 1, 8 and 32: requests/s and generated tokens/s
  for (a) the naive server, one request at a time through `generate` (in process, no HTTP: the
  naive side pays nothing for the network), (b) tunelab's batched torch engine over HTTP, and
  (c) the llama.cpp engine on the run's GGUF exports (--engines llama.cpp:q4_k_m ...).
load: N requests at C concurrent to tiny runs: errors, p50 / p99 latency, and the server's RSS
  after warm-up and at the end; --mixed: answers, streams, completions, hostile sampling and bad
  requests in turn (an error is a good request refused, a bad one answered, or any 5xx).

    python benchmarks/serve.py throughput runs/assistant_smollm2_qlora --requests 32
    python benchmarks/serve.py load RUN_DIR [RUN_DIR ...] --requests 1000 --concurrency 32 [--mixed]
Each prints a table and writes benchmarks/results/serve_<mode>.json.
"""

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

from tunelab.hardware import write_measurement  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(run_dirs: list[str], *options: str):
    port = free_port()
    command = [sys.executable, "-m", "tunelab.cli", "serve", *run_dirs, "--port", str(port)]
    process = subprocess.Popen([*command, *options], cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.5)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def fire(url: str, bodies: list, concurrency: int) -> list[tuple[int, float, int]]:
    """(status, seconds, completion tokens) of each request, `concurrency` in flight. A body is
    a chat request, or (path, JSON or raw bytes) for the mixed load."""
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:

        async def one(body) -> tuple[int, float, int]:
            path, payload = body if isinstance(body, tuple) else ("/v1/chat/completions", body)
            sent = {"content": payload} if isinstance(payload, bytes) else {"json": payload}
            async with gate:
                start = time.perf_counter()
                response = await client.post(path, **sent)
                seconds = time.perf_counter() - start
                streamed = response.headers.get("content-type", "").startswith("text/event-stream")
                answer = {} if streamed else response.json()
                tokens = answer.get("usage", {}).get("completion_tokens", 0)
                return response.status_code, seconds, tokens

        return await asyncio.gather(*(one(body) for body in bodies))


def mixed_bodies(names: list[str], asked: list[str], max_tokens: int) -> list[tuple]:
    """The load of a public server: answers, streams, completions, hostile sampling, and bad
    requests (unknown model, unknown role, broken JSON, an empty prompt) in turn; each as
    (path, body, whether a 200 is the right answer)."""
    kinds = []
    for i, question in enumerate(asked):
        model = names[i % len(names)]
        chat = chat_body(model, question, max_tokens)
        kinds.append([
            ("/v1/chat/completions", chat, True),
            ("/v1/chat/completions", {**chat, "stream": True}, True),
            ("/v1/completions", {"model": model, "prompt": question, "max_tokens": max_tokens}, True),
            ("/v1/chat/completions", {**chat, "temperature": 1e-30, "top_p": 1e-300,
                                      "seed": 2**63}, True),
            ("/v1/chat/completions", {**chat, "model": "no-such-model"}, False),
            ("/v1/chat/completions", {**chat, "messages": [{"role": "wizard", "content": "hi"}]},
             False),
            ("/v1/chat/completions", b'{"model": "' + model.encode() + b'", "messages": [', False),
            ("/v1/completions", {"model": model, "prompt": "", "max_tokens": max_tokens}, False),
        ][i % 8])  # fmt: skip
    return kinds


def chat_body(model: str, question: str, max_tokens: int) -> dict:
    messages = [{"role": "user", "content": question}]
    return {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0}


def questions(count: int) -> list[str]:
    lines = (ROOT / "data" / "assistant" / "test.jsonl").read_text().splitlines()
    asked = [json.loads(line)["question"] for line in lines if line.strip()]
    return [asked[i % len(asked)] for i in range(count)]


def naive_side(run_dir: str, asked: list[str], max_tokens: int) -> dict:
    from tunelab.assistant import load_assistant

    assistant = load_assistant(run_dir)
    start, tokens = time.perf_counter(), 0
    for question in asked:
        [answer] = assistant.answer([question], max_new_tokens=max_tokens)
        tokens += len(assistant.tokenizer(answer, add_special_tokens=False)["input_ids"])
    seconds = time.perf_counter() - start
    return {"requests_per_s": len(asked) / seconds, "tokens_per_s": tokens / seconds}


def throughput(args) -> dict:
    asked = questions(args.requests)
    report = {"run": args.run_dirs[0], "requests": args.requests, "max_tokens": args.max_tokens}
    report["naive"] = naive_side(args.run_dirs[0], asked, args.max_tokens)
    name = Path(args.run_dirs[0]).resolve().name
    bodies = [chat_body(name, q, args.max_tokens) for q in asked]
    for engine in args.engines:
        kind, _, quant = engine.partition(":")
        options = ["--max-batch", "32", "--engine", kind, *(["--quant", quant] if quant else [])]
        with live_server(args.run_dirs, *options) as (url, _):
            asyncio.run(fire(url, bodies[:2], 2))  # warm-up
            for concurrency in args.concurrency:
                start = time.perf_counter()
                results = asyncio.run(fire(url, bodies, concurrency))
                seconds = time.perf_counter() - start
                report[f"{engine}_c{concurrency}"] = {
                    "requests_per_s": len(results) / seconds,
                    "tokens_per_s": sum(r[2] for r in results) / seconds,
                    "errors": sum(r[0] != 200 for r in results),
                }
    print(f"\n{'':28} {'requests/s':>12} {'tokens/s':>10} {'x naive':>8}")
    for side, figures in report.items():
        if isinstance(figures, dict):
            speedup = figures["tokens_per_s"] / report["naive"]["tokens_per_s"]
            print(
                f"{side:28} {figures['requests_per_s']:12.2f} {figures['tokens_per_s']:10.1f}"
                f" {speedup:7.2f}x"
            )
    return report


def load(args) -> dict:
    names = [Path(d).resolve().name for d in args.run_dirs]
    asked = questions(args.requests)
    planned = mixed_bodies(names, asked, args.max_tokens) if args.mixed else [
        ("/v1/chat/completions", chat_body(names[i % len(names)], q, args.max_tokens), True)
        for i, q in enumerate(asked)
    ]  # fmt: skip
    bodies = [(path, body) for path, body, _ in planned]
    warm = max(1, args.requests // 10)
    with live_server(args.run_dirs) as (url, pid):
        asyncio.run(fire(url, bodies[:warm], args.concurrency[-1]))
        rss_warm = rss_mb(pid)
        start = time.perf_counter()
        results = asyncio.run(fire(url, bodies, args.concurrency[-1]))
        seconds = time.perf_counter() - start
        rss_end = rss_mb(pid)
    latencies = sorted(r[1] for r in results)
    answered = list(zip(results, (ok for _, _, ok in planned), strict=True))
    report = {
        "runs": args.run_dirs,
        "mixed": args.mixed,
        "requests": len(results),
        "concurrency": args.concurrency[-1],
        # a refused good request, an accepted bad one, or any 5xx
        "errors": sum((r[0] == 200) != ok or r[0] >= 500 for r, ok in answered),
        "refused_as_meant": sum(400 <= r[0] < 500 and not ok for r, ok in answered),
        "seconds": seconds,
        "requests_per_s": len(results) / seconds,
        "p50_s": statistics.median(latencies),
        "p99_s": latencies[int(0.99 * (len(latencies) - 1))],
        "rss_after_warmup_mb": rss_warm,
        "rss_end_mb": rss_end,
        "rss_growth": rss_end / rss_warm - 1,
    }
    for key, value in report.items():
        print(f"{key:22} {value:.3f}" if isinstance(value, float) else f"{key:22} {value}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["throughput", "load"])
    parser.add_argument("run_dirs", nargs="+")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--mixed", action="store_true", help="load: good, hostile and bad requests")
    parser.add_argument(
        "--engines",
        nargs="+",
        default=["torch"],
        help="throughput: torch, llama.cpp:f16, llama.cpp:q8_0, llama.cpp:q4_k_m",
    )
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    report = throughput(args) if args.mode == "throughput" else load(args)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"serve_{args.mode}.json"
    write_measurement(out, report)
    print(f"written: {out}")


if __name__ == "__main__":
    main()
