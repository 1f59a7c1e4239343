"""bench.json as a table (terminal and report) and a plot: base against tuned per benchmark,
with standard-error bars."""

from pathlib import Path

from tunelab.charts import plt, save


def table_lines(result: dict) -> list[str]:
    """Markdown: each benchmark's figure ± standard error, and for a run the paired difference."""
    scores = result["scores"]
    paired = any("base" in row for row in scores.values())
    head = "| benchmark | metric | n | base | tuned | difference | beyond noise? |"
    if not paired:
        head = "| benchmark | metric | n | score |"
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for name, row in scores.items():
        if not paired:
            lines.append(
                f"| {name} | {row['metric']} | {row['n']} | {pm(row['score'], row['stderr'])} |"
            )
            continue
        lines.append(
            f"| {name} | {row['metric']} | {row['n']} | {pm(row['base'], row['base_stderr'])} | "
            f"{pm(row['tuned'], row['tuned_stderr'])} | {100 * row['difference']:+.1f} ± "
            f"{100 * row['stderr']:.1f} pts | {'yes' if row['beyond_noise'] else 'no'} |"
        )
    return lines


def pm(value: float, stderr: float | None) -> str:
    return f"{value:.3f} ± {stderr:.3f}" if isinstance(stderr, float) else f"{value:.3f}"


def plot(result: dict, path: Path) -> None:
    scores = result["scores"]
    names = list(scores)
    figure, axis = plt.subplots(figsize=(max(5.0, 1.1 * len(names)), 3.6))
    xs = range(len(names))
    if any("base" in row for row in scores.values()):
        for offset, side, colour in ((-0.2, "base", "#999999"), (0.2, "tuned", "#1f77b4")):
            values = [scores[n][side] for n in names]
            errors = [scores[n][f"{side}_stderr"] or 0.0 for n in names]
            axis.bar([x + offset for x in xs], values, 0.4, yerr=errors, label=side, color=colour)
        axis.legend(fontsize=8)
    else:
        axis.bar(
            xs,
            [scores[n]["score"] for n in names],
            0.6,
            yerr=[scores[n]["stderr"] or 0.0 for n in names],
        )
    axis.set_xticks(list(xs), names, rotation=30, ha="right", fontsize=8)
    axis.set_ylabel("accuracy (± standard error)")
    axis.set_title("standard benchmarks")
    save(figure, path)
