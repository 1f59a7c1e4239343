"""Plots of a run: loss and accuracy per epoch (overfitting shows as diverging curves), confusion."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402


def plot_curves(history: list[dict], steps: list[dict], path: Path) -> None:
    epochs = [h["epoch"] for h in history]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    if steps:
        per_epoch = max(s["step"] for s in steps) / max(epochs)
        loss_ax.plot(
            [s["step"] / per_epoch for s in steps],
            [s["loss"] for s in steps],
            color="tab:blue",
            alpha=0.25,
            label="train (per step)",
        )
    loss_ax.plot(epochs, [h["train_loss"] for h in history], "o-", color="tab:blue", label="train")
    loss_ax.plot(
        epochs, [h["val_loss"] for h in history], "o-", color="tab:orange", label="validation"
    )
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
    acc_ax.plot(
        epochs, [h["train_accuracy"] for h in history], "o-", color="tab:blue", label="train"
    )
    acc_ax.plot(
        epochs, [h["val_accuracy"] for h in history], "o-", color="tab:orange", label="validation"
    )
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
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
