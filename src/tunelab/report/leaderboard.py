"""The comparison table and its plots, read from each variant's run directory."""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLUMNS = [
    ("method", "method", "{}"),
    ("test_accuracy", "test acc", "{:.4f}"),
    ("test_macro_f1", "macro-F1", "{:.4f}"),
    ("trainable_params", "trainable", "{:,}"),
    ("trainable_pct", "trainable %", "{:.3f}"),
    ("train_seconds", "train s", "{:.1f}"),
    ("peak_rss_mb", "peak RSS MB", "{:,.0f}"),
    ("peak_gpu_mb", "peak GPU MB", "{:,.0f}"),
    ("tokens_per_s", "tokens/s", "{:,.0f}"),
    ("artifact_mb", "saved MB", "{:.2f}"),
]


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
        "test_accuracy": after["accuracy"],
        "test_macro_f1": after["macro_f1"],
        "test_accuracy_before": summary["test_accuracy_before"],
        "trainable_params": summary["parameters"]["trainable"],
        "trainable_pct": summary["parameters"]["trainable_pct"],
        "train_seconds": summary["train_seconds"],
        "wall_seconds": summary["wall_seconds"],
        "peak_rss_mb": summary["peak_rss_mb"],
        "peak_gpu_mb": summary.get("peak_gpu_mb"),
        "tokens_per_s": summary["tokens_per_s"],
        "artifact_mb": folder_mb(artifact) - tokenizer_mb,
    }


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| " + " | ".join(title for _, title, _ in COLUMNS) + " |",
        "|" + " --- |" * len(COLUMNS),
    ]
    for row in rows:
        cells = [
            fmt.format(row[key]) if row.get(key) is not None else "–" for key, _, fmt in COLUMNS
        ]
        if row["status"] != "ok":
            cells = [row["method"], "failed"] + ["–"] * (len(COLUMNS) - 2)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scatter(rows: list[dict], x: str, xlabel: str, path: Path, log: bool) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        value = max(row[x], 1e-4) if log else row[x]
        ax.scatter(value, row["test_accuracy"])
        ax.annotate(
            row["method"], (value, row["test_accuracy"]), textcoords="offset points", xytext=(4, 4)
        )
    if log:
        ax.set_xscale("log")
    ax.set(xlabel=xlabel, ylabel="test accuracy", title=f"Test accuracy vs {xlabel}")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def bar_chart(rows: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(rows)), 4.5))
    ax.bar([r["method"] for r in rows], [r["test_accuracy"] for r in rows], color="tab:blue")
    ax.set(ylabel="test accuracy", title="Test accuracy per method", ylim=(0, 1))
    ax.tick_params(axis="x", rotation=45)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_leaderboard(rows: list[dict], out: Path) -> Path:
    ok = sorted((r for r in rows if r["status"] == "ok"), key=lambda r: -r["test_accuracy"])
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
            "Same data, split, seed and evaluation for every method; sorted by test accuracy.",
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
