"""The comparison table and its plots, read from each variant's run directory. Which score
ranks, which way, and which extra columns show is the task's to say."""

import json
from pathlib import Path

from tunelab.charts import plt, save
from tunelab.hardware import describe_machine
from tunelab.run_record import is_finished, read_record
from tunelab.tasks import TASKS
from tunelab.tasks.base import Column

HEAD = (
    Column("method", "method", "{}"),
    Column("score", "score"),
    Column("score_before", "before"),
)
TAIL = (
    Column("trainable_params", "trainable", "{:,}"),
    Column("trainable_pct", "trainable %", "{:.3f}"),
    Column("train_seconds", "train s", "{:.1f}"),
    Column("peak_rss_mb", "peak RSS MB", "{:,.0f}"),
    Column("peak_gpu_mb", "peak GPU MB", "{:,.0f}"),
    Column("tokens_per_s", "tokens/s", "{:,.0f}"),
    Column("artifact_mb", "saved MB", "{:.2f}"),
)


def columns_of(rows: list[dict]) -> list[Column]:
    """The common columns around those the rows' tasks add; a column shows when a row has it."""
    ok = [r for r in rows if r["status"] == "ok"]
    extra = [c for r in ok for c in TASKS.get(r["task"]).columns_for(r)]
    columns = list(dict.fromkeys([*HEAD, *extra, *TAIL]))
    return [c for c in columns if c.key == "method" or any(r.get(c.key) is not None for r in rows)]


def folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def collect_row(name: str, run_dir: Path) -> dict:
    """One leaderboard row; a variant that did not finish is listed as failed."""
    if not is_finished(run_dir):
        return {"method": name, "status": "failed", "run_dir": str(run_dir)}
    record = read_record(run_dir)
    summary = json.loads((run_dir / "train_summary.json").read_text())
    # The saved model, without the tokenizer files every artefact carries.
    artifact = run_dir / record.artifact
    tokenizer_mb = sum(f.stat().st_size for f in artifact.glob("*token*") if f.is_file()) / 2**20
    return {
        "method": name,
        "status": "ok",
        "run_dir": str(run_dir),
        "task": record.task,
        "score_name": summary["score_name"],
        "higher_is_better": summary["higher_is_better"],
        "score": summary["score"],
        "score_before": summary["score_before"],
        **{c.key: summary.get(c.key) for c in TASKS.get(record.task).columns_for(summary)},
        "trainable_params": summary["parameters"]["trainable"],
        "trainable_pct": summary["parameters"]["trainable_pct"],
        "train_seconds": summary["train_seconds"],
        "wall_seconds": summary["wall_seconds"],
        "peak_rss_mb": summary["peak_rss_mb"],
        "peak_gpu_mb": summary.get("peak_gpu_mb"),
        "tokens_per_s": summary["tokens_per_s"],
        "artifact_mb": folder_mb(artifact) - tokenizer_mb,
        "precision": (summary.get("precision") or {}).get("used"),
        "machine": summary.get("machine"),
    }


def score_title(rows: list[dict]) -> str:
    names = {r["score_name"] for r in rows if r["status"] == "ok"}
    return names.pop().replace("_", " ") if len(names) == 1 else "score"


def markdown_table(rows: list[dict]) -> str:
    columns = columns_of(rows)
    titles = [score_title(rows) if c.key == "score" else c.title for c in columns]
    lines = ["| " + " | ".join(titles) + " |", "|" + " --- |" * len(columns)]
    for row in rows:
        cells = [c.fmt.format(row[c.key]) if row.get(c.key) is not None else "–" for c in columns]
        if row["status"] != "ok":
            cells = [row["method"], "failed"] + ["–"] * (len(columns) - 2)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scatter(rows: list[dict], x: str, xlabel: str, path: Path, log: bool) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        value = max(row[x], 1e-4) if log else row[x]
        ax.scatter(value, row["score"])
        ax.annotate(row["method"], (value, row["score"]), textcoords="offset points", xytext=(4, 4))
    if log:
        ax.set_xscale("log")
    title = score_title(rows)
    ax.set(xlabel=xlabel, ylabel=title, title=f"{title} vs {xlabel}")
    ax.grid(alpha=0.3)
    save(fig, path)


def bar_chart(rows: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(rows)), 4.5))
    ax.bar([r["method"] for r in rows], [r["score"] for r in rows], color="tab:blue")
    ax.set(ylabel=score_title(rows), title=f"{score_title(rows)} per method")
    ax.tick_params(axis="x", rotation=45)
    ax.grid(alpha=0.3, axis="y")
    save(fig, path)


def measured_on(rows: list[dict]) -> list[str]:
    """Where the times were measured: they move with the CPU (AVX2, AVX-512, AMX) and threads."""
    machines = dict.fromkeys(describe_machine(r["machine"]) for r in rows if r.get("machine"))
    return [f"Measured on: {'; '.join(machines)}.", ""] if machines else []


def write_leaderboard(rows: list[dict], out: Path) -> tuple[Path, str]:
    """leaderboard.{md,json} and plots; returns the markdown file and its table."""
    ok = [r for r in rows if r["status"] == "ok"]
    ok.sort(key=lambda r: -r["score"] if r["higher_is_better"] else r["score"])
    ranked = ok + [r for r in rows if r["status"] != "ok"]
    (out / "leaderboard.json").write_text(json.dumps(ranked, indent=2))
    plots = out / "plots"
    plots.mkdir(exist_ok=True)
    if ok:
        bar_chart(ok, plots / "accuracy.png")
        scatter(
            ok,
            "trainable_pct",
            "trainable parameters (%)",
            plots / "accuracy_vs_params.png",
            log=True,
        )
        scatter(ok, "train_seconds", "training time (s)", plots / "accuracy_vs_time.png", log=False)
    table = markdown_table(ranked)
    text = "\n".join(
        [
            f"# Leaderboard: {out.name}",
            "",
            "Same data, split, seed and evaluation for every variant; "
            f"sorted by {score_title(ok)}.",
            "",
            *measured_on(ok),
            table,
            "",
            "![accuracy](plots/accuracy.png)",
            "",
            "![params](plots/accuracy_vs_params.png)",
            "",
            "![time](plots/accuracy_vs_time.png)",
            "",
        ]
    )
    path = out / "leaderboard.md"
    path.write_text(text)
    return path, table
