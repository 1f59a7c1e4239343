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
            score = pm(row["score"], row["stderr"]) + count(row.get("correct"), row["n"])
            lines.append(f"| {name} | {row['metric']} | {row['n']} | {score} |")
            continue
        base = pm(row["base"], row["base_stderr"]) + count(row.get("base_correct"), row["n"])
        tuned = pm(row["tuned"], row["tuned_stderr"]) + count(row.get("correct"), row["n"])
        lines.append(
            f"| {name} | {row['metric']} | {row['n']} | {base} | "
            f"{tuned} | {100 * row['difference']:+.1f} ± "
            f"{100 * row['stderr']:.1f} pts | {'yes' if row['beyond_noise'] else 'no'} |"
        )
    return lines


def time_line(result: dict) -> str:
    """How long the scoring took, and which figures were kept from an earlier scoring of the
    same unchanged model (bench/cache.py)."""
    rows = result["scores"].values()
    if not any("base" in row for row in rows):
        seconds = sum(row.get("seconds", 0.0) for row in rows)
        kept = sum(bool(row.get("kept")) for row in rows)
        line = f"scoring time {seconds:.0f} s"
        return line + (f" ({kept} benchmark(s) kept from an earlier scoring)" if kept else "")
    tuned = sum(row.get("tuned_seconds", 0.0) for row in rows)
    base = sum(row.get("base_seconds", 0.0) for row in rows if not row.get("base_kept"))
    kept = sum(bool(row.get("base_kept")) for row in rows)
    line = f"scored in {tuned + base:.0f} s (tuned {tuned:.0f} s, base {base:.0f} s)"
    return line + (f"; the base's figures of {kept} benchmark(s) kept from earlier" if kept else "")


def count(correct: int | None, n: int) -> str:
    """BFCL's categories: the questions answered right, beside the accuracy."""
    return f" ({correct}/{n})" if correct is not None else ""


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
