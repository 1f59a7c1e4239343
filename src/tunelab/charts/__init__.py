"""Plot helpers every task's report uses: matplotlib loaded on first use, per-epoch curves.
Each task says which series its curves panel shows; nothing here knows a task."""

from dataclasses import dataclass
from pathlib import Path

from tunelab.charts.markdown_cells import TableColumn, epoch_table
from tunelab.charts.train_history import read_history


class LazyPyplot:
    """matplotlib.pyplot, imported when the first plot is drawn: a training process then holds
    its 24 MB only after training, when the report is written (peak RSS, docs/performance.md)."""

    def __getattr__(self, name: str):
        import matplotlib

        matplotlib.use("Agg")  # files only; no display on servers
        import matplotlib.pyplot

        return getattr(matplotlib.pyplot, name)


plt = LazyPyplot()


def running_mean(values: list[float | None], window: int) -> list[float | None]:
    """The mean of the last `window` values at each point (fewer at the start; None is skipped):
    per-step RL rewards of a few sampled completions are too noisy to read a trend from."""
    means: list[float | None] = []
    for end in range(1, len(values) + 1):
        recent = [v for v in values[max(0, end - window) : end] if v is not None]
        means.append(sum(recent) / len(recent) if recent else None)
    return means


@dataclass(frozen=True)
class Series:
    key: str  # a field of the per-epoch records in metrics.jsonl
    label: str
    color: str = "tab:orange"
    style: str = "o-"


@dataclass(frozen=True)
class Panel:
    """The right-hand panel of the curves figure (the left one is always the loss)."""

    title: str
    ylabel: str
    series: tuple[Series, ...]
    yscale: str = "linear"
    twin: Series | None = None  # a second y axis (preference margins)
    twin_ylabel: str = ""
    table: tuple[TableColumn, ...] = ()  # the per-epoch table beside the figure


def per_epoch(ax, history: list[dict], series: Series) -> None:
    ax.plot(
        [h["epoch"] for h in history],
        [h.get(series.key) for h in history],
        series.style,
        color=series.color,
        label=series.label,
    )


def save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(history: list[dict], steps: list[dict], panel: Panel, path: Path) -> None:
    """Loss per step and per epoch on the left; the task's validation metric on the right."""
    fig, (loss_ax, right_ax) = plt.subplots(1, 2, figsize=(10, 4))
    if steps:
        steps_per_epoch = max(s["step"] for s in steps) / max(h["epoch"] for h in history)
        loss_ax.plot(
            [s["step"] / steps_per_epoch for s in steps],
            [s["loss"] for s in steps],
            color="tab:blue",
            alpha=0.25,
            label="train (per step)",
        )
    per_epoch(loss_ax, history, Series("train_loss", "train", "tab:blue"))
    per_epoch(loss_ax, history, Series("val_loss", "validation"))
    loss_ax.set(xlabel="epoch", ylabel="loss", title="Loss")
    for series in panel.series:
        per_epoch(right_ax, history, series)
    right_ax.set(xlabel="epoch", ylabel=panel.ylabel, title=panel.title, yscale=panel.yscale)
    if panel.twin is not None:
        twin_ax = right_ax.twinx()
        per_epoch(twin_ax, history, panel.twin)
        twin_ax.set(ylabel=panel.twin_ylabel)
        twin_ax.legend(loc="lower right")
    for ax in (loss_ax, right_ax):
        ax.legend()
        ax.grid(alpha=0.3)
    save(fig, path)


def curves_section(run_dir: Path, panel: Panel) -> list[str]:
    """The report's training curves: the figure (plots/curves.png) and the per-epoch table;
    nothing when the run trained no epoch (prompting baselines)."""
    history, steps = read_history(run_dir)
    if not history:
        return []
    plot_curves(history, steps, panel, run_dir / "plots" / "curves.png")
    table = epoch_table(history, panel.table)
    return ["## Training curves", "", *table, "", "![curves](plots/curves.png)", ""]


def plot_before_after(
    values: list[tuple], title: str, path: Path, series: tuple[str, ...] = ("before", "after")
) -> None:
    """Grouped bars: each score (a label, then one value per series; between 0 and 1)."""
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(values)), 4))
    xs, width = range(len(values)), 0.8 / len(series)
    colors = ("tab:gray", "tab:green", "tab:blue", "tab:orange")
    for i, name in enumerate(series):
        offset = (i - (len(series) - 1) / 2) * width
        heights = [v[1 + i] or 0.0 for v in values]
        ax.bar([x + offset for x in xs], heights, width, label=name, color=colors[i])
    ax.set_xticks(list(xs), [v[0] for v in values], rotation=15)
    ax.set(ylim=(0, 1.2), title=title)
    ax.legend(loc="upper center", ncol=len(series))  # above the bars, which end at 1
    ax.grid(alpha=0.3, axis="y")
    save(fig, path)
