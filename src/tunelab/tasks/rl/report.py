"""Report of grpo / rloo runs: held-out pass@1 and rewards before and after, the per-step curves
TRL logs (each reward's mean, KL to the reference, completion length, clipped share), and
example completions before and after."""

from pathlib import Path

from tunelab.charts import plt, running_mean, save
from tunelab.charts.markdown_cells import fmt
from tunelab.charts.train_history import read_history
from tunelab.tasks.preference.report import rewarded_examples

# TRL's per-step log keys -> panel titles (rewards/<name>/mean are added per reward)
STEP_PANELS = (
    ("kl", "KL to the reference"),
    ("completions/mean_length", "completion length (tokens)"),
    ("completions/clipped_ratio", "share cut at max_completion_length"),
)


def plot_steps(steps: list[dict], rewards: list[str], path: Path) -> None:
    """Rewards (summed and each function's) and the health figures, per logged step: faint per
    step, solid as a running mean over a tenth of the run."""
    fig, axes = plt.subplots(1, 1 + len(STEP_PANELS), figsize=(15, 3.8))
    xs, window = [s["step"] for s in steps], max(1, len(steps) // 10)

    def draw(ax, key: str, label: str, color: str) -> None:
        values = [s.get(key) for s in steps]
        ax.plot(xs, values, color=color, alpha=0.25)
        ax.plot(xs, running_mean(values, window), color=color, label=label)

    draw(axes[0], "reward", "weighted sum", "black")
    for i, name in enumerate(rewards):  # matplotlib's colour cycle: any number of rewards
        draw(axes[0], f"rewards/{name}/mean", name, f"C{i % 10}")
    axes[0].set(xlabel="step", title=f"sampled reward (running mean of {window} steps)")
    axes[0].legend(fontsize=8)
    for ax, (key, title) in zip(axes[1:], STEP_PANELS, strict=True):
        if all(s.get(key) is None for s in steps):  # KL when beta is 0: TRL logs none
            note = "beta = 0: no KL term" if key == "kl" else "not logged"
            ax.text(0.5, 0.5, note, ha="center", transform=ax.transAxes)
        draw(ax, key, title, "tab:blue")
        ax.set(xlabel="step", title=title)
    for ax in axes:
        ax.grid(alpha=0.3)
    save(fig, path)


def score_rows(before: dict, after: dict) -> list[str]:
    lines = [
        "## Held-out prompts before and after (greedy answers)",
        "",
        "| figure | before | after |",
        "| --- | --- | --- |",
    ]
    if after.get("pass_at_1") is not None:
        lines.append(f"| pass@1 | {fmt(before['pass_at_1'])} | {fmt(after['pass_at_1'])} |")
    lines.append(
        f"| mean reward (weighted sum) | {fmt(before['mean_reward'])} | "
        f"{fmt(after['mean_reward'])} |"
    )
    for name, value in after["rewards"].items():
        lines.append(f"| reward {name} | {fmt(before['rewards'].get(name))} | {fmt(value)} |")
    return [*lines, "", f"{after['n']} held-out prompts."]


def rl_report(run_dir: Path, data: dict, before: dict, after: dict) -> list[str]:
    _, steps = read_history(run_dir)
    lines = [f"- data: {data.get('splits')}; rewards {data.get('rewards')}", ""]
    lines += score_rows(before, after)
    if steps:
        plot_steps(steps, data.get("rewards", []), run_dir / "plots" / "rl.png")
        lines += ["", "## Training steps", "", "![rl](plots/rl.png)"]
    return [*lines, "", *rewarded_examples(before, after, 70)]
