"""The commands that train, score and use runs: train, eval, predict, compare, quantize,
report, generate, chat (registered on the app in cli/__init__.py)."""

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tunelab.errors import TunelabError

err = Console(stderr=True)
out = Console()


def interrupted_line(config: Path | None, overrides: list[str], run_dir: Path) -> str:
    """Ctrl-C: which checkpoint is kept and the command that continues from it."""
    from tunelab.train.checkpoint import describe, is_complete

    last = run_dir / "checkpoints" / "last"
    kept = f"kept {describe(last)}" if is_complete(last) else "no epoch had finished"
    command = " ".join(["tunelab train", *([str(config)] if config else []), *overrides])
    return f"interrupted: {kept}; continue with: {command} --resume"


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
    overwrite: Annotated[
        bool, typer.Option(help="Delete what output.dir holds and train from the start.")
    ] = False,
    nproc: Annotated[
        int, typer.Option(min=1, help="Data-parallel processes on this machine (torchrun).")
    ] = 1,
    nnodes: Annotated[int, typer.Option(min=1, help="Machines taking part (docs/scale.md).")] = 1,
    node_rank: Annotated[int, typer.Option(min=0, help="This machine's number, 0 first.")] = 0,
    master: Annotated[
        str | None, typer.Option(help="HOST:PORT of node 0, where the nodes meet.")
    ] = None,
):
    """Train and evaluate a run; prints test accuracy before and after."""
    if config is not None and "=" in str(config) and not config.exists():
        overrides, config = [str(config), *(overrides or [])], None  # only overrides were given
    if resume and overwrite:
        raise TunelabError("--resume and --overwrite exclude each other")
    from tunelab.pipeline import load_config, run

    settings = load_config(config, overrides or [])  # checked once, before any worker starts
    if nproc > 1 or nnodes > 1:
        flags = [*(["--resume"] if resume else []), *(["--overwrite"] if overwrite else [])]
        argv = ["train", *([str(config)] if config else []), *(overrides or []), *flags]
        from tunelab.cli.launch import launch_workers

        raise typer.Exit(launch_workers(nproc, argv, nnodes, node_rank, master))
    try:
        summary = run(settings, resume=resume, overwrite=overwrite)
    except KeyboardInterrupt:
        line = interrupted_line(config, overrides or [], Path(settings.output.dir))
        err.print(line, highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(130) from None
    if int(os.environ.get("RANK", "0")) == 0:
        out.print(f"run directory: {settings.output.dir}")
        name = summary["score_name"].replace("_", " ")
        out.print(f"{name} before: {summary['score_before']:.4f}   after: {summary['score']:.4f}")


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


def predict(
    run_dir: Path,
    texts: Annotated[
        list[str] | None, typer.Argument(help="Texts; none: one per line from stdin.")
    ] = None,
    int8: Annotated[bool, typer.Option(help="Dynamic INT8 weights (faster on CPU).")] = False,
):
    """Classify texts: one JSON line each with the label and the class probabilities."""
    from tunelab.inference import classify_texts

    texts = texts or read_stdin_lines()
    if not texts:
        raise TunelabError("no text given (as arguments or on stdin)")
    # A blank text has no label: its line says so, and output line n stays input line n.
    filled = [i for i, text in enumerate(texts) if text.strip()]
    results = classify_texts(str(run_dir), [texts[i] for i in filled], int8=int8) if filled else []
    by_line = dict(zip(filled, results, strict=True))
    for i, text in enumerate(texts):
        blank = {"text": text, "label": None, "probs": None, "error": "empty text"}
        print(json.dumps(by_line.get(i, blank), allow_nan=False))


def read_stdin_lines() -> list[str]:
    try:
        return [line.rstrip("\r\n") for line in sys.stdin]
    except UnicodeDecodeError as exc:
        raise TunelabError(f"stdin: not UTF-8 text (byte {exc.start} of a line)") from None


def seed_list(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise TunelabError(
            f"--seeds: give whole numbers separated by commas, not '{text}'"
        ) from None
    if not seeds or len(set(seeds)) < len(seeds):
        raise TunelabError(f"--seeds: give distinct seeds, e.g. 1,2,3 (got '{text}')")
    return seeds


def compare_command(
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML: base config + variants.")],
    limit_train: Annotated[int | None, typer.Option(help="Train on at most N rows.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs for every variant.")] = None,
    max_minutes: Annotated[
        float | None, typer.Option(help="Training time cap per variant.")
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option(help="Trained-token budget per run (every variant the same).")
    ] = None,
    seeds: Annotated[
        str | None, typer.Option(help="Seeds, e.g. 1,2,3: every variant once per seed.")
    ] = None,
    only: Annotated[
        str | None, typer.Option(help="Run and rank only these variants, e.g. head,lora.")
    ] = None,
):
    """Run method variants on the same data and rank them (leaderboard.md/json + plots)."""
    from tunelab.compare import budget_overrides, compare

    budget = budget_overrides(limit_train, epochs, max_minutes, max_tokens)
    try:
        path, table, failed = compare(
            experiment,
            budget,
            echo=lambda line: out.print(line, markup=False),
            seeds=seed_list(seeds) if seeds else None,
            only=[name.strip() for name in only.split(",") if name.strip()] if only else None,
        )
    except KeyboardInterrupt:
        err.print(
            "interrupted: finished runs and search trials are kept; run the same command "
            "again to go on",
            highlight=False,
            markup=False,
        )
        raise typer.Exit(130) from None
    out.print(table, markup=False)
    out.print(f"leaderboard: {path}")
    if failed:
        raise TunelabError(f"{len(failed)} variant(s) failed: {', '.join(failed)}")


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


def report(run_dir: Path):
    """(Re)write report.md, report.html and plots of a run."""
    from tunelab.report import write_report
    from tunelab.run_record import read_record

    read_record(run_dir)
    out.print(f"report: {write_report(run_dir)}")


def generate_command(
    run_dir: Path,
    prompt: Annotated[list[str] | None, typer.Option(help="A question (repeatable).")] = None,
    file: Annotated[
        Path | None, typer.Option(help="Questions: .jsonl with 'question', or one per line.")
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 128,
    temperature: Annotated[float, typer.Option(min=0.0, max=2.0, help="0: greedy.")] = 0.0,
    top_p: Annotated[float, typer.Option(min=1e-6, max=1.0)] = 0.9,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
):
    """Answer questions with an sft run (its template and stop rule); one JSON line each."""
    from tunelab.assistant import load_assistant, read_questions
    from tunelab.generation import check_fits

    questions = [*(prompt or []), *(read_questions(file) if file else [])]
    if not questions:
        raise TunelabError("no question given (--prompt or --file)")
    if not all(q.strip() for q in questions):
        raise TunelabError("--prompt: an empty question (there is nothing to answer)")
    assistant = load_assistant(run_dir)
    for question in questions:
        check_fits(
            assistant.model, assistant.prompt_tokens([{"role": "user", "content": question}])
        )
    sampling = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p}
    answers = assistant.answer(questions, batch_size=batch_size, **sampling)
    for question, answer in zip(questions, answers, strict=True):
        print(json.dumps({"question": question, "answer": answer}, ensure_ascii=False))


def chat(
    run_dir: Path,
    max_new_tokens: Annotated[int, typer.Option(min=1)] = 256,
    temperature: Annotated[float, typer.Option(min=0.0, max=2.0, help="0: greedy.")] = 0.7,
    top_p: Annotated[float, typer.Option(min=1e-6, max=1.0)] = 0.9,
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
        turns = assistant.fitted(turns, max_new_tokens)
        out.print("assistant> ", end="")
        [answer] = assistant.converse([turns], streamer=streamer, **sampling)
        turns.append({"role": "assistant", "content": answer})
