"""report.md and a self-contained report.html (images inlined) from the run directory alone.
The header is common; the task of the run writes the rest (and draws its plots)."""

import base64
import json
from pathlib import Path

from markdown_it import MarkdownIt

from tunelab.bench.report import plot, table_lines
from tunelab.bench.run import bench_path
from tunelab.run_record import read_record
from tunelab.tasks import TASKS

HTML_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3rem .6rem}}
img{{max-width:100%}}</style></head><body>{body}</body></html>"""


def load_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def header(run_dir: Path, summary: dict) -> list[str]:
    params = summary.get("parameters", {})
    return [
        f"# tunelab run: {run_dir.name}",
        "",
        f"- model **{summary.get('model')}**, task **{summary.get('task')}**, "
        f"method **{summary.get('method')}**",
        f"- trainable parameters: {params.get('trainable', 0):,} of {params.get('total', 0):,} "
        f"({params.get('trainable_pct', 0):.3f} %)",
        f"- training: {summary.get('epochs_run')} epochs (best {summary.get('best_epoch')}), "
        f"{summary.get('train_seconds', 0):.1f} s, {summary.get('tokens_per_s') or 0:,.0f} "
        f"tokens/s, peak RSS {summary.get('peak_rss_mb', 0):,.0f} MB",
    ]


def build_markdown(run_dir: Path) -> str:
    task = TASKS.get(read_record(run_dir).task)
    summary = load_json(run_dir / "train_summary.json")
    data = load_json(run_dir / "data_summary.json")
    before, after = load_json(run_dir / "eval_before.json"), load_json(run_dir / "eval_after.json")
    sections = [*header(run_dir, summary), *task.report(run_dir, data, before, after)]
    return "\n".join([*sections, *bench_section(run_dir)])


def bench_section(run_dir: Path) -> list[str]:
    """eval.bench's standard benchmarks, base against tuned, when the run scored them."""
    result = load_json(bench_path(run_dir))
    if not result:
        return []
    plot(result, run_dir / "plots" / "bench.png")
    return [
        "",
        "## Standard benchmarks (lm-evaluation-harness)",
        "",
        *table_lines(result),
        "",
        "![standard benchmarks, base and tuned](plots/bench.png)",
    ]


def inline_images(html: str, run_dir: Path) -> str:
    for png in (run_dir / "plots").glob("*.png"):
        data = base64.b64encode(png.read_bytes()).decode()
        html = html.replace(f'src="plots/{png.name}"', f'src="data:image/png;base64,{data}"')
    return html


def write_report(run_dir: str | Path) -> Path:
    """Draw the plots and write report.md and report.html; returns the HTML path."""
    run_dir = Path(run_dir)
    (run_dir / "plots").mkdir(exist_ok=True)
    text = build_markdown(run_dir)
    (run_dir / "report.md").write_text(text)
    body = MarkdownIt("commonmark").enable("table").render(text)
    html_path = run_dir / "report.html"
    html_path.write_text(HTML_PAGE.format(title=run_dir.name, body=inline_images(body, run_dir)))
    return html_path
