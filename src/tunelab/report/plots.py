"""Plots of a run: loss and accuracy per epoch (overfitting shows as diverging curves), confusion."""

from pathlib import Path


class LazyPyplot:
    """matplotlib.pyplot, imported when the first plot is drawn: a training process then holds
    its 24 MB only after training, when the report is written (peak RSS, docs/performance.md)."""

    def __getattr__(self, name: str):
        import matplotlib

        matplotlib.use("Agg")  # files only; no display on servers
        import matplotlib.pyplot

        return getattr(matplotlib.pyplot, name)


plt = LazyPyplot()


def per_epoch(ax, history: list[dict], key: str, color: str, label: str, style: str = "o-"):
    ax.plot(
        [h["epoch"] for h in history],
        [h.get(key) for h in history],
        style,
        color=color,
        label=label,
    )


def plot_curves(history: list[dict], steps: list[dict], path: Path) -> None:
    epochs = [h["epoch"] for h in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    if steps:
        steps_per_epoch = max(s["step"] for s in steps) / max(epochs)
        loss_ax.plot(
            [s["step"] / steps_per_epoch for s in steps],
            [s["loss"] for s in steps],
            color="tab:blue",
            alpha=0.25,
            label="train (per step)",
        )
    per_epoch(loss_ax, history, "train_loss", "tab:blue", "train")
    per_epoch(loss_ax, history, "val_loss", "tab:orange", "validation")
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
    if "train_accuracy" in history[0]:
        per_epoch(acc_ax, history, "train_accuracy", "tab:blue", "train")
        per_epoch(acc_ax, history, "val_accuracy", "tab:orange", "validation")
        acc_ax.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    elif "val_perplexity" in history[0]:  # generative tasks: held-out perplexity
        per_epoch(acc_ax, history, "val_perplexity", "tab:orange", "validation")
        acc_ax.set(xlabel="epoch", ylabel="perplexity", title="Perplexity", yscale="log")
    else:  # preference tasks (TRL's names): pairwise accuracy on validation pairs
        key = "val_accuracy" if "val_accuracy" in history[0] else "val_rewards/accuracies"
        per_epoch(acc_ax, history, key, "tab:orange", "validation")
        acc_ax.set(
            xlabel="epoch", ylabel="pairwise accuracy", title="Preference accuracy and margin"
        )
        margin = "val_margin" if "val_margin" in history[0] else "val_rewards/margins"
        margin_ax = acc_ax.twinx()
        per_epoch(margin_ax, history, margin, "tab:green", "margin", style="s--")
        margin_ax.set(ylabel="mean margin (chosen - rejected)")
        margin_ax.legend(loc="lower right")
    for ax in (loss_ax, acc_ax):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion(matrix: list[list[int]], labels: list[str], title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2.5, 1.2 * len(labels) + 2))
    ax.imshow(matrix, cmap="Blues")
    peak = max(max(row) for row in matrix) or 1
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(
                j,
                i,
                str(value),
                ha="center",
                va="center",
                color="white" if value > peak / 2 else "black",
            )
    ax.set(
        xticks=range(len(labels)),
        yticks=range(len(labels)),
        xticklabels=labels,
        yticklabels=labels,
        xlabel="predicted",
        ylabel="true",
        title=title,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_scores(before: dict, after: dict, keys: list[tuple[str, str]], path) -> None:
    """Grouped bars: each score before and after tuning (general ROUGE-L when there is one)."""
    shown = [(k, t) for k, t in keys if after.get(k) is not None]
    values = [(t, before.get(k) or 0.0, after[k]) for k, t in shown]
    if "general" in after:
        values.append(
            ("general ROUGE-L", before["general"]["rouge_l"], after["general"]["rouge_l"])
        )
    if not values:
        return
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(values)), 4))
    xs = range(len(values))
    ax.bar([x - 0.2 for x in xs], [v[1] for v in values], 0.4, label="before", color="tab:gray")
    ax.bar([x + 0.2 for x in xs], [v[2] for v in values], 0.4, label="after", color="tab:green")
    ax.set_xticks(list(xs), [v[0] for v in values], rotation=15)
    ax.set(ylim=(0, 1.05), title="Held-out scores before and after")
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_ppo(steps: list[dict], path) -> None:
    """Reward, KL to the reference and response length per PPO step."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    xs = [s["step"] for s in steps]
    for ax, key, title in zip(axes, ("reward", "kl", "response_length"),
                              ("mean reward", "KL to reference", "response length"), strict=True):  # fmt: skip
        ax.plot(xs, [s[key] for s in steps], color="tab:blue")
        ax.set(xlabel="PPO step", title=title)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
