"""The leaderboard's plots: the score per method with its interval, the score against the
trainable share, two Pareto plots (score against training time and against peak memory)
with the front marked: the variants no other beats on both, and the standard benchmarks (each
BFCL category, ...) per method where the runs scored any."""

from pathlib import Path

import numpy as np

from tunelab.charts import plt, save
from tunelab.report.intervals import pareto_front

PARETO = (
    ("train_seconds", "training time (s)", "pareto_time.png"),
    ("peak_rss_mb", "peak memory (RSS, MB)", "pareto_memory.png"),
)


def error_bars(rows: list[dict]) -> list[float]:
    return [r.get("score_ci") or 0.0 for r in rows]


def bar_chart(rows: list[dict], title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(rows)), 4.5))
    names = [r["method"] for r in rows]
    ax.bar(names, [r["score"] for r in rows], yerr=error_bars(rows), capsize=4, color="tab:blue")
    ax.set(ylabel=title, title=f"{title} per method (95 % interval over seeds)")
    ax.tick_params(axis="x", rotation=45)
    ax.grid(alpha=0.3, axis="y")
    save(fig, path)


def params_scatter(rows: list[dict], title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row in rows:
        x = max(row["trainable_pct"], 1e-4)
        ax.errorbar(x, row["score"], yerr=row.get("score_ci") or 0.0, fmt="o", capsize=3)
        ax.annotate(row["method"], (x, row["score"]), textcoords="offset points", xytext=(4, 4))
    ax.set_xscale("log")
    ax.set(xlabel="trainable parameters (%)", ylabel=title, title=f"{title} vs trainable share")
    ax.grid(alpha=0.3)
    save(fig, path)


def pareto_plot(rows: list[dict], cost: str, label: str, title: str, path: Path) -> None:
    """Score against one cost; the front is joined by a line and its points filled."""
    rows = [r for r in rows if r.get(cost) is not None]
    front = pareto_front(
        [r[cost] for r in rows], [r["score"] for r in rows], rows[0]["higher_is_better"]
    )
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for row, on_front in zip(rows, front, strict=True):
        ax.errorbar(
            row[cost],
            row["score"],
            yerr=row.get("score_ci") or 0.0,
            fmt="o",
            mfc="tab:red" if on_front else "white",
            mec="tab:red" if on_front else "tab:gray",
            ecolor="tab:gray",
            capsize=3,
        )
        ax.annotate(
            row["method"], (row[cost], row["score"]), textcoords="offset points", xytext=(4, 4)
        )
    line = sorted((r[cost], r["score"]) for r, f in zip(rows, front, strict=True) if f)
    ax.step(
        *zip(*line, strict=True), where="post", color="tab:red", alpha=0.6, label="Pareto front"
    )
    ax.set(xlabel=label, ylabel=title, title=f"{title} vs {label}")
    ax.legend()
    ax.grid(alpha=0.3)
    save(fig, path)


def benchmark_keys(rows: list[dict]) -> list[str]:
    """The benchmark figures the rows have (`bench.NAME`; not their `.change`)."""
    keys = (k for r in rows for k in r if k.startswith("bench.") and not k.endswith(".change"))
    return list(dict.fromkeys(keys))


def benchmark_chart(rows: list[dict], keys: list[str], path: Path) -> None:
    """One group of bars per benchmark, one bar per method, with the seeds' interval."""
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(max(7, 0.5 * len(keys) * len(rows)), 4.5))
    for i, row in enumerate(rows):
        heights = [row.get(k) if row.get(k) is not None else np.nan for k in keys]
        spread = [row.get("intervals", {}).get(k) or 0.0 for k in keys]
        x = np.arange(len(keys)) + i * width
        ax.bar(x, heights, width, yerr=spread, capsize=3, label=row["method"])
    ax.set_xticks(np.arange(len(keys)) + width * (len(rows) - 1) / 2)
    ax.set_xticklabels([k.removeprefix("bench.") for k in keys], rotation=30, ha="right")
    ax.set(ylabel="score", title="Standard benchmarks per method (95 % interval over seeds)")
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    save(fig, path)


def draw_plots(rows: list[dict], folder: Path, title: str) -> list[str]:
    """Every plot of the leaderboard's rows; returns their file names."""
    folder.mkdir(exist_ok=True)
    bar_chart(rows, title, folder / "accuracy.png")
    names = ["accuracy.png"]
    trained = [r for r in rows if r.get("trainable_pct") is not None]
    if trained:
        params_scatter(trained, title, folder / "accuracy_vs_params.png")
        names.append("accuracy_vs_params.png")
        for cost, label, name in PARETO:
            if any(r.get(cost) is not None for r in trained):
                pareto_plot(trained, cost, label, title, folder / name)
                names.append(name)
    if keys := benchmark_keys(rows):
        benchmark_chart(rows, keys, folder / "benchmarks.png")
        names.append("benchmarks.png")
    return names


def plot_links(names: list[str]) -> list[str]:
    return [line for name in names for line in (f"![{name[:-4]}](plots/{name})", "")]
