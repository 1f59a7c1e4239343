"""The comparison table and its plots, read from each variant's run directory."""

import json
from pathlib import Path

from tunelab.report.plots import plt

# (key, title, format); a column shows when some row has a value for it.
COLUMNS = [
    ("method", "method", "{}"),
    ("score", "score", "{:.4f}"),
    ("score_before", "before", "{:.4f}"),
    ("test_macro_f1", "macro-F1", "{:.4f}"),
    ("rouge_l", "ROUGE-L", "{:.4f}"),
    ("refusal_rate", "refusals (off-topic)", "{:.3f}"),
    ("false_refusal_rate", "false refusals", "{:.3f}"),
    ("general_rouge_l_before", "general ROUGE-L before", "{:.4f}"),
    ("general_rouge_l", "general ROUGE-L after", "{:.4f}"),
    ("general_perplexity_before", "general ppl before", "{:.2f}"),
    ("general_perplexity", "general ppl after", "{:.2f}"),
    ("trainable_params", "trainable", "{:,}"),
    ("trainable_pct", "trainable %", "{:.3f}"),
    ("train_seconds", "train s", "{:.1f}"),
    ("peak_rss_mb", "peak RSS MB", "{:,.0f}"),
    ("peak_gpu_mb", "peak GPU MB", "{:,.0f}"),
    ("tokens_per_s", "tokens/s", "{:,.0f}"),
    ("artifact_mb", "saved MB", "{:.2f}"),
]
TASK_SCORES = ("rouge_l", "refusal_rate", "false_refusal_rate", "general_rouge_l_before",
               "general_rouge_l", "general_perplexity_before", "general_perplexity")  # fmt: skip


def folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def collect_row(name: str, run_dir: Path) -> dict:
    """One leaderboard row; a variant that did not finish is listed as failed."""
    info_path = run_dir / "run_info.json"
    if not info_path.is_file():
        return {"method": name, "status": "failed", "run_dir": str(run_dir)}
    info = json.loads(info_path.read_text())
    summary = json.loads((run_dir / "train_summary.json").read_text())
    after = json.loads((run_dir / "eval_after.json").read_text())
    # The saved model, without the tokenizer files every artefact carries.
    artifact = run_dir / info["artifact"]
    tokenizer_mb = sum(f.stat().st_size for f in artifact.glob("*token*") if f.is_file()) / 2**20
    return {
        "method": name,
        "status": "ok",
        "run_dir": str(run_dir),
        # runs written before scores were named carry only the classification fields
        "score_name": summary.get("score_name", "test_accuracy"),
        "score": summary.get("score", after.get("accuracy")),
        "score_before": summary.get("score_before", summary.get("test_accuracy_before")),
        "test_macro_f1": after.get("macro_f1"),
        **{key: summary.get(key) for key in TASK_SCORES},
        "trainable_params": summary["parameters"]["trainable"],
        "trainable_pct": summary["parameters"]["trainable_pct"],
        "train_seconds": summary["train_seconds"],
        "wall_seconds": summary["wall_seconds"],
        "peak_rss_mb": summary["peak_rss_mb"],
        "peak_gpu_mb": summary.get("peak_gpu_mb"),
        "tokens_per_s": summary["tokens_per_s"],
        "artifact_mb": folder_mb(artifact) - tokenizer_mb,
    }


def score_title(rows: list[dict]) -> str:
    names = {r["score_name"] for r in rows if r["status"] == "ok"}
    return names.pop().replace("_", " ") if len(names) == 1 else "score"


def markdown_table(rows: list[dict]) -> str:
    columns = [c for c in COLUMNS if c[0] == "method" or any(r.get(c[0]) is not None for r in rows)]
    titles = [score_title(rows) if key == "score" else title for key, title, _ in columns]
    lines = ["| " + " | ".join(titles) + " |", "|" + " --- |" * len(columns)]
    for row in rows:
        cells = [
            fmt.format(row[key]) if row.get(key) is not None else "–" for key, _, fmt in columns
        ]
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
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def bar_chart(rows: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(rows)), 4.5))
    ax.bar([r["method"] for r in rows], [r["score"] for r in rows], color="tab:blue")
    ax.set(ylabel=score_title(rows), title=f"{score_title(rows)} per method")
    ax.tick_params(axis="x", rotation=45)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_leaderboard(rows: list[dict], out: Path) -> Path:
    ok = [r for r in rows if r["status"] == "ok"]
    lower_is_better = score_title(ok) == "perplexity"
    ok.sort(key=lambda r: r["score"] if lower_is_better else -r["score"])
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
    text = "\n".join(
        [
            f"# Leaderboard: {out.name}",
            "",
            f"Same data, split, seed and evaluation for every variant; sorted by {score_title(ok)}.",
            "",
            markdown_table(ranked),
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
    return path
