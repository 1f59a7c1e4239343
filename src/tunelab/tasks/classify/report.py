"""Report sections of a classification run: metrics before/after, curves, the confusion matrix,
example predictions, and the quantization table when `tunelab quantize` has run."""

import json
from pathlib import Path

from tunelab.charts import Panel, Series, curves_section, plt, save
from tunelab.charts.markdown_cells import short

ACCURACY_PANEL = Panel(
    "Accuracy",
    "accuracy",
    (Series("train_accuracy", "train", "tab:blue"), Series("val_accuracy", "validation")),
    table=(
        ("train_loss", "train loss", "{:.4f}"),
        ("val_loss", "val loss", "{:.4f}"),
        ("train_accuracy", "train acc", "{:.4f}"),
        ("val_accuracy", "val acc", "{:.4f}"),
        ("train_seconds", "seconds", "{:.1f}"),
    ),
)


def data_line(data: dict) -> str:
    splits = data.get("splits", {})
    rows = ", ".join(f"{k} {v['rows']}" for k, v in splits.items())
    dropped = sum(v["dropped_overlong"] for v in splits.values())
    truncated = sum(v["truncated_overlong"] for v in splits.values())
    return (
        f"- data: {rows}; labels {', '.join(data.get('labels', []))}; over "
        f"{data.get('max_length')} tokens: {truncated} truncated, {dropped} dropped"
    )


def metrics_table(before: dict, after: dict) -> list[str]:
    lines = ["| metric (test) | before | after |", "| --- | --- | --- |"]
    for key in ("accuracy", "precision", "recall", "macro_f1", "loss"):
        nan = float("nan")
        lines.append(f"| {key} | {before.get(key, nan):.4f} | {after.get(key, nan):.4f} |")
    return lines


def examples_table(before: dict, after: dict) -> list[str]:
    lines = ["| text | true | before | after |", "| --- | --- | --- | --- |"]
    for b, a in zip(before.get("examples", []), after.get("examples", []), strict=True):
        fmt = lambda e: f"{e['predicted']} ({e['probs'][e['predicted']]:.2f})"  # noqa: E731
        lines.append(f"| {short(b['text'])} | {b['label']} | {fmt(b)} | {fmt(a)} |")
    return lines


def quantization_table(run_dir: Path) -> list[str]:
    path = run_dir / "quantize.json"
    if not path.is_file():
        return []
    lines = [
        "## Quantization (test split)",
        "",
        "| variant | accuracy | Δ accuracy | size MB | size ratio | rows/s | speed-up |",
        "| --- " * 7 + "|",
    ]
    for r in json.loads(path.read_text())["variants"]:
        lines.append(
            f"| {r['variant']} | {r['score']:.4f} | {r['score_delta']:+.4f} | "
            f"{r['size_mb']:.1f} | {r['size_ratio']:.2f} | {r['rows_per_s']:.1f} | "
            f"{r['speedup']:.2f}x |"
        )
    return [*lines, ""]


def plot_confusion(matrix: list[list[int]], labels: list[str], title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2.5, 1.2 * len(labels) + 2))
    ax.imshow(matrix, cmap="Blues")
    peak = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            color = "white" if value > peak / 2 else "black"
            ax.text(j, i, str(value), ha="center", va="center", color=color)
    ax.set(
        xticks=range(len(labels)),
        yticks=range(len(labels)),
        xticklabels=labels,
        yticklabels=labels,
        xlabel="predicted",
        ylabel="true",
        title=title,
    )
    save(fig, path)


def classification_report(run_dir: Path, data: dict, before: dict, after: dict) -> list[str]:
    curves = curves_section(run_dir, ACCURACY_PANEL)
    plot_confusion(
        after["confusion_matrix"],
        after["labels"],
        "test (after)",
        run_dir / "plots" / "confusion.png",
    )
    return [
        data_line(data),
        "",
        "## Test metrics before and after fine-tuning",
        "",
        *metrics_table(before, after),
        "",
        *curves,
        "## Confusion matrix (test, after)",
        "",
        "![confusion](plots/confusion.png)",
        "",
        "## Example predictions",
        "",
        *examples_table(before, after),
        "",
        *quantization_table(run_dir),
    ]
