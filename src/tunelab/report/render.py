"""report.md and a self-contained report.html (images inlined) from the run directory alone."""

import base64
import json
from pathlib import Path

from markdown_it import MarkdownIt

from tunelab.report.lm_sections import data_line, lm_sections
from tunelab.report.markdown import curves_section, short
from tunelab.report.plots import plot_confusion, plot_curves, plot_ppo
from tunelab.report.preference_sections import ppo_sections, preference_sections
from tunelab.train.metrics_log import read_metrics

HTML_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3rem .6rem}}
img{{max-width:100%}}</style></head><body>{body}</body></html>"""


def load_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def metrics_table(before: dict, after: dict) -> list[str]:
    lines = ["| metric (test) | before | after |", "| --- | --- | --- |"]
    for key in ("accuracy", "precision", "recall", "macro_f1", "loss"):
        lines.append(
            f"| {key} | {before.get(key, float('nan')):.4f} | {after.get(key, float('nan')):.4f} |"
        )
    return lines


def examples_table(before: dict, after: dict) -> list[str]:
    lines = ["| text | true | before | after |", "| --- | --- | --- | --- |"]
    for b, a in zip(before.get("examples", []), after.get("examples", []), strict=True):
        fmt = lambda e: f"{e['predicted']} ({e['probs'][e['predicted']]:.2f})"  # noqa: E731
        lines.append(f"| {short(b['text'])} | {b['label']} | {fmt(b)} | {fmt(a)} |")
    return lines


def history_table(history: list[dict]) -> list[str]:
    lines = [
        "| epoch | train loss | val loss | train acc | val acc | seconds |",
        "| --- " * 6 + "|",
    ]
    for h in history:
        lines.append(
            f"| {h['epoch']} | {h['train_loss']:.4f} | {h['val_loss']:.4f} | "
            f"{h['train_accuracy']:.4f} | {h['val_accuracy']:.4f} | {h['train_seconds']:.1f} |"
        )
    return lines


def quantization_table(result: dict) -> list[str]:
    if not result:
        return []
    lines = [
        "## Quantization (test split)",
        "",
        "| variant | accuracy | Δ accuracy | size MB | size ratio | rows/s | speed-up |",
        "| --- " * 7 + "|",
    ]
    for r in result["variants"]:
        lines.append(
            f"| {r['variant']} | {r['accuracy']:.4f} | {r['accuracy_delta']:+.4f} | {r['size_mb']:.1f} | "
            f"{r['size_ratio']:.2f} | {r['rows_per_s']:.1f} | {r['speedup']:.2f}x |"
        )
    return [*lines, ""]


def build_markdown(run_dir: Path) -> str:
    summary = load_json(run_dir / "train_summary.json")
    data = load_json(run_dir / "data_summary.json")
    before, after = load_json(run_dir / "eval_before.json"), load_json(run_dir / "eval_after.json")
    history = [m for m in read_metrics(run_dir / "metrics.jsonl") if m.get("event") == "eval"]
    params = summary.get("parameters", {})
    header = [
        f"# tunelab run: {run_dir.name}",
        "",
        f"- model **{summary.get('model')}**, task **{summary.get('task')}**, method **{summary.get('method')}**",
        f"- trainable parameters: {params.get('trainable', 0):,} of {params.get('total', 0):,} "
        f"({params.get('trainable_pct', 0):.3f} %)",
    ]
    training = (
        f"- training: {summary.get('epochs_run')} epochs (best {summary.get('best_epoch')}), "
        f"{summary.get('train_seconds', 0):.1f} s, {summary.get('tokens_per_s') or 0:,.0f} tokens/s, "
        f"peak RSS {summary.get('peak_rss_mb', 0):,.0f} MB"
    )
    if summary.get("task") == "ppo":
        body = ppo_sections(before, after, history)
        return "\n".join([*header, f"- data: {data.get('splits')}", training, "", *body])
    if summary.get("task") in ("reward", "dpo"):
        body = preference_sections(before, after, history)
        return "\n".join([*header, f"- data: {data.get('splits')}", training, "", *body])
    if "labels" not in data:  # the generative tasks
        body = lm_sections(run_dir, before, after, history)
        return "\n".join([*header, data_line(data), training, "", *body])
    splits = ", ".join(f"{k} {v['rows']}" for k, v in data.get("splits", {}).items())
    dropped = sum(v["dropped_overlong"] for v in data.get("splits", {}).values())
    truncated = sum(v["truncated_overlong"] for v in data.get("splits", {}).values())
    lines = [
        *header,
        f"- data: {splits}; labels {', '.join(data.get('labels', []))}; over {data.get('max_length')} tokens: "
        f"{truncated} truncated, {dropped} dropped",
        training,
        "",
        "## Test metrics before and after fine-tuning",
        "",
        *metrics_table(before, after),
        "",
        *curves_section(history_table(history)),
        "## Confusion matrix (test, after)",
        "",
        "![confusion](plots/confusion.png)",
        "",
        "## Example predictions",
        "",
        *examples_table(before, after),
        "",
        *quantization_table(load_json(run_dir / "quantize.json")),
    ]
    return "\n".join(lines)


def inline_images(html: str, run_dir: Path) -> str:
    for png in (run_dir / "plots").glob("*.png"):
        data = base64.b64encode(png.read_bytes()).decode()
        html = html.replace(f'src="plots/{png.name}"', f'src="data:image/png;base64,{data}"')
    return html


def write_report(run_dir: str | Path) -> Path:
    """Draw the plots and write report.md and report.html; returns the HTML path."""
    run_dir = Path(run_dir)
    (run_dir / "plots").mkdir(exist_ok=True)
    metrics = read_metrics(run_dir / "metrics.jsonl")
    history = [m for m in metrics if m.get("event") == "eval"]
    steps = [m for m in metrics if m.get("event") == "train"]
    if history and "train_loss" in history[0]:
        plot_curves(history, steps, run_dir / "plots" / "curves.png")
    elif steps and "kl" in steps[0]:
        plot_ppo(steps, run_dir / "plots" / "ppo.png")
    after = load_json(run_dir / "eval_after.json")
    if "confusion_matrix" in after:
        plot_confusion(
            after["confusion_matrix"],
            after["labels"],
            "test (after)",
            run_dir / "plots" / "confusion.png",
        )
    text = build_markdown(run_dir)
    (run_dir / "report.md").write_text(text)
    body = MarkdownIt("commonmark").enable("table").render(text)
    html_path = run_dir / "report.html"
    html_path.write_text(HTML_PAGE.format(title=run_dir.name, body=inline_images(body, run_dir)))
    return html_path
