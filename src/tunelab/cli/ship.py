"""tunelab commands that ship a finished run: export (Hugging Face, GGUF, Ollama) and serve
(the OpenAI-compatible HTTP API). cli/__init__.py registers them."""

import socket
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tunelab.errors import TunelabError

err = Console(stderr=True)
out = Console()


def export(
    run_dir: Path,
    out: Annotated[Path, typer.Option(help="Target folder.")],
    merge: Annotated[
        bool, typer.Option(help="Fold LoRA/IA3 into the base: a plain HF model.")
    ] = False,
    format: Annotated[
        str, typer.Option(help="hf (a Hugging Face folder), gguf, or ollama (gguf + Modelfile).")
    ] = "hf",
    quant: Annotated[str, typer.Option(help="GGUF weights: f32, f16, q8_0 or q4_k_m.")] = "f16",
):
    """Write the run's model: a Hugging Face folder (adapter or merged), or GGUF for llama.cpp."""
    from tunelab.export.gguf import export_gguf
    from tunelab.export.hf import export_run

    if format not in ("hf", "gguf", "ollama"):
        raise TunelabError(f"--format: '{format}' is not one of hf, gguf, ollama")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TunelabError(f"--out: {out} exists and is not an empty folder; give a new one")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if format == "hf":
            out_path = export_run(run_dir, out, merge)
        else:
            out_path = export_gguf(run_dir, out, quant, ollama=format == "ollama")
    except OSError as exc:  # a read-only or full disk, a parent that is a file
        raise TunelabError(f"--out: cannot write {out} ({exc.strerror or exc})") from None
    print(f"exported: {out_path}")


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise TunelabError(f"--port {port}: cannot listen on {host} ({exc.strerror})") from None


def serve(
    run_dirs: Annotated[list[str], typer.Argument(help="RUN_DIR or NAME=RUN_DIR (repeatable).")],
    host: Annotated[str, typer.Option(help="127.0.0.1: this machine only.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    api_key: Annotated[
        str | None, typer.Option(envvar="TUNELAB_API_KEY", help="Require Bearer KEY on /v1.")
    ] = None,
    max_batch: Annotated[int, typer.Option(min=1, help="Requests in one generate call.")] = 16,
    batch_wait_ms: Annotated[float, typer.Option(min=0, help="Wait for company.")] = 10.0,
    queue_size: Annotated[int, typer.Option(min=1, help="Waiting requests; more get 429.")] = 64,
    max_tokens: Annotated[int, typer.Option(min=1, help="The most one answer may ask.")] = 512,
    engine: Annotated[str, typer.Option(help="torch, or llama.cpp (the runs' GGUF).")] = "torch",
    quant: Annotated[str, typer.Option(help="llama.cpp: f32, f16, q8_0 or q4_k_m.")] = "f16",
):
    """Serve runs over an OpenAI-compatible HTTP API; LoRA runs on one base share it."""
    import uvicorn

    from tunelab.serve.app import ServeLimits, create_app
    from tunelab.serve.catalog import load_catalog, load_llama_catalog
    from tunelab.serve.engine import EngineLimits

    if engine not in ("torch", "llama.cpp"):
        raise TunelabError(f"--engine: '{engine}' is not one of torch, llama.cpp")
    if api_key is not None and not api_key.strip():
        raise TunelabError(
            "--api-key: empty (no client could match it); give a key or leave it out"
        )
    check_port_free(host, port)  # before the runs load: uvicorn would only log it, then exit
    catalog = load_catalog(run_dirs) if engine == "torch" else load_llama_catalog(run_dirs, quant)
    engine = EngineLimits(max_batch, batch_wait_ms / 1000, queue_size=queue_size)
    limits = ServeLimits(engine=engine, max_tokens=max_tokens, api_key=api_key)
    if host not in ("127.0.0.1", "localhost") and api_key is None:
        err.print(f"[yellow]warning:[/yellow] serving on {host} without --api-key")
    out.print(f"serving {', '.join(catalog.models)} on http://{host}:{port}/v1")
    uvicorn.run(create_app(catalog, limits), host=host, port=port, log_level="warning")
