"""tunelab command line: train, eval, predict, generate, chat, serve, compare, export,
quantize, report, data preview, config schema."""

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tunelab.errors import TunelabError

app = typer.Typer(
    help="Fine-tune a pretrained language model and compare methods.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the configuration format.", no_args_is_help=True)
app.add_typer(config_app, name="config")
data_app = typer.Typer(help="Look at the data as the model will see it.", no_args_is_help=True)
app.add_typer(data_app, name="data")
err = Console(stderr=True)
out = Console()


def one_line_errors(command):
    """A user error is one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except TunelabError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def launch_workers(nproc: int, argv: list[str]) -> int:
    """Re-run this command in `nproc` data-parallel processes (torchrun; gloo on CPU, NCCL on
    GPU)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(max(1, (os.cpu_count() or 1) // nproc)))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "tunelab.cli",
        *argv,
    ]
    return subprocess.call(command, env=env)


@app.command()
@one_line_errors
def train(
    config: Annotated[
        Path | None, typer.Argument(help="YAML config; omitted: the defaults.")
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Argument(help="Dotted overrides: train.epochs=2")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue from the last complete checkpoint.")
    ] = False,
    nproc: Annotated[int, typer.Option(help="Data-parallel processes (torchrun).")] = 1,
):
    """Train and evaluate a run; prints test accuracy before and after."""
    if config is not None and "=" in str(config) and not config.exists():
        overrides, config = [str(config), *(overrides or [])], None  # only overrides were given
    if nproc > 1:
        argv = [
            "train",
            *([str(config)] if config else []),
            *(overrides or []),
            *(["--resume"] if resume else []),
        ]
        raise typer.Exit(launch_workers(nproc, argv))
    from tunelab.pipeline import load_config, run

    settings = load_config(config, overrides or [])
    summary = run(settings, resume=resume)
    if int(os.environ.get("RANK", "0")) == 0:
        out.print(f"run directory: {settings.output.dir}")
        name = summary["score_name"].replace("_", " ")
        out.print(f"{name} before: {summary['score_before']:.4f}   after: {summary['score']:.4f}")


@app.command("eval")
@one_line_errors
def eval_command(
    run_dir: Path,
    data: Annotated[str, typer.Option(help="Labelled file (csv/tsv/jsonl/parquet).")],
    text_field: str = "text",
    label_field: str = "label",
    columns: Annotated[
        str | None, typer.Option(help="Column names of a headerless file: label,text")
    ] = None,
):
    """Evaluate a finished run on a labelled file; prints one JSON object."""
    from tunelab.inference import evaluate_file

    metrics = evaluate_file(
        str(run_dir), data, text_field, label_field, columns.split(",") if columns else None
    )
    print(json.dumps(metrics))


@app.command()
@one_line_errors
def predict(
    run_dir: Path,
    texts: Annotated[
        list[str] | None, typer.Argument(help="Texts; none: one per line from stdin.")
    ] = None,
    int8: Annotated[bool, typer.Option(help="Dynamic INT8 weights (faster on CPU).")] = False,
):
    """Classify texts: one JSON line each with the label and the class probabilities."""
    from tunelab.inference import classify_texts

    texts = texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise TunelabError("no text given (as arguments or on stdin)")
    for result in classify_texts(str(run_dir), texts, int8=int8):
        print(json.dumps(result))


@app.command("compare")
@one_line_errors
def compare_command(
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML: base config + variants.")],
    limit_train: Annotated[int | None, typer.Option(help="Train on at most N rows.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs for every variant.")] = None,
    max_minutes: Annotated[
        float | None, typer.Option(help="Training time cap per variant.")
    ] = None,
):
    """Run method variants on the same data and rank them (leaderboard.md/json + plots)."""
    from tunelab.compare import budget_overrides, compare

    budget = budget_overrides(limit_train, epochs, max_minutes)
    path, table = compare(experiment, budget, echo=lambda line: out.print(line, markup=False))
    out.print(table, markup=False)
    out.print(f"leaderboard: {path}")


@app.command()
@one_line_errors
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
    from tunelab.export import export_run
    from tunelab.export_gguf import export_gguf

    if format not in ("hf", "gguf", "ollama"):
        raise TunelabError(f"--format: '{format}' is not one of hf, gguf, ollama")
    out.parent.mkdir(parents=True, exist_ok=True)
    if format == "hf":
        out_path = export_run(run_dir, out, merge)
    else:
        out_path = export_gguf(run_dir, out, quant, ollama=format == "ollama")
    print(f"exported: {out_path}")


@app.command()
@one_line_errors
def quantize(
    run_dir: Path,
    int8: Annotated[bool, typer.Option(help="torch dynamic INT8 (CPU inference).")] = True,
    nf4: Annotated[bool, typer.Option("--4bit", help="bitsandbytes NF4 weights.")] = False,
):
    """Measure size, speed and accuracy of quantized variants on the run's test split."""
    from tunelab.quantize import quantize_run
    from tunelab.report import write_report

    result = quantize_run(run_dir, int8=int8, nf4=nf4)
    for row in result["variants"]:
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}))
    write_report(run_dir)


@app.command()
@one_line_errors
def report(run_dir: Path):
    """(Re)write report.md, report.html and plots of a run."""
    from tunelab.report import write_report
    from tunelab.run_record import read_record

    read_record(run_dir)
    out.print(f"report: {write_report(run_dir)}")


@app.command("generate")
@one_line_errors
def generate_command(
    run_dir: Path,
    prompt: Annotated[list[str] | None, typer.Option(help="A question (repeatable).")] = None,
    file: Annotated[
        Path | None, typer.Option(help="Questions: .jsonl with 'question', or one per line.")
    ] = None,
    max_new_tokens: int = 128,
    temperature: Annotated[float, typer.Option(help="0: greedy (deterministic).")] = 0.0,
    top_p: float = 0.9,
    batch_size: int = 8,
):
    """Answer questions with an sft run (its template and stop rule); one JSON line each."""
    from tunelab.assistant import load_assistant, read_questions

    questions = [*(prompt or []), *(read_questions(file) if file else [])]
    if not questions:
        raise TunelabError("no question given (--prompt or --file)")
    assistant = load_assistant(run_dir)
    sampling = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p}
    answers = assistant.answer(questions, batch_size=batch_size, **sampling)
    for question, answer in zip(questions, answers, strict=True):
        print(json.dumps({"question": question, "answer": answer}, ensure_ascii=False))


@app.command()
@one_line_errors
def chat(
    run_dir: Path,
    max_new_tokens: int = 256,
    temperature: Annotated[float, typer.Option(help="0: greedy.")] = 0.7,
    top_p: float = 0.9,
    history: Annotated[
        bool, typer.Option(help="Keep earlier turns in the prompt (off for single-turn Q&A).")
    ] = True,
):
    """Talk to an sft run in the terminal; tokens stream as they are generated. Ctrl-D ends."""
    from transformers import TextStreamer

    from tunelab.assistant import load_assistant

    assistant = load_assistant(run_dir)
    streamer = TextStreamer(assistant.tokenizer, skip_prompt=True, skip_special_tokens=True)
    turns: list[dict] = []
    sampling = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p}
    while True:
        try:
            question = input("you> ").strip()
        except EOFError:
            break
        if not question:
            continue
        turns = [*(turns if history else []), {"role": "user", "content": question}]
        out.print("assistant> ", end="")
        [answer] = assistant.reply([assistant.prompt(turns)], streamer=streamer, **sampling)
        turns.append({"role": "assistant", "content": answer})


@app.command()
@one_line_errors
def serve(
    run_dirs: Annotated[list[str], typer.Argument(help="RUN_DIR or NAME=RUN_DIR (repeatable).")],
    host: Annotated[str, typer.Option(help="127.0.0.1: this machine only.")] = "127.0.0.1",
    port: int = 8000,
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
    catalog = load_catalog(run_dirs) if engine == "torch" else load_llama_catalog(run_dirs, quant)
    engine = EngineLimits(max_batch, batch_wait_ms / 1000, queue_size=queue_size)
    limits = ServeLimits(engine=engine, max_tokens=max_tokens, api_key=api_key)
    if host not in ("127.0.0.1", "localhost") and api_key is None:
        err.print(f"[yellow]warning:[/yellow] serving on {host} without --api-key")
    out.print(f"serving {', '.join(catalog.models)} on http://{host}:{port}/v1")
    uvicorn.run(create_app(catalog, limits), host=host, port=port, log_level="warning")


@data_app.command("preview")
@one_line_errors
def data_preview(
    config: Annotated[Path, typer.Argument(help="YAML config of an sft or pretrain run.")],
    overrides: Annotated[list[str] | None, typer.Argument(help="Dotted overrides.")] = None,
    rows: Annotated[int, typer.Option(help="Training rows shown.")] = 2,
):
    """Print training rows as the model sees them; the trained tokens are inside [[ ]]."""
    from tunelab.pipeline import load_config, open_task

    task = open_task(load_config(config, overrides or []))
    summary = task.prepare()
    for line in task.preview(rows):
        out.print(line, markup=False)
    print(json.dumps(summary))


@config_app.command("schema")
def config_schema():
    """Print the JSON schema of a run config."""
    from tunelab import pipeline  # noqa: F401 - registers every task and method
    from tunelab.config import json_schema

    print(json_schema())


if __name__ == "__main__":
    app()
