"""Report sections of the preference tasks: pairwise accuracy and margin before/after, curves,
and (DPO) answers of the policy before and after next to the preferred answer."""

from pathlib import Path

from tunelab.charts import Panel, Series, curves_section, plt, save
from tunelab.charts.markdown_cells import epoch_table, fmt, short
from tunelab.charts.train_history import read_history

ROWS = [
    ("accuracy", "pairwise accuracy (ties count half)"),
    ("margin", "mean margin (chosen - rejected)"),
    ("policy_accuracy", "policy prefers chosen by log-probability"),
    ("policy_accuracy_per_token", "policy prefers chosen by log-probability per token"),
]


def preference_panel(accuracy: str, margin: str) -> Panel:
    """Validation pairwise accuracy with the margin on a second axis, under TRL's log names."""
    return Panel(
        "Preference accuracy and margin",
        "pairwise accuracy",
        (Series(accuracy, "validation"),),
        twin=Series(margin, "margin", "tab:green", "s--"),
        twin_ylabel="mean margin (chosen - rejected)",
        table=(
            ("train_loss", "train loss", "{:.4f}"),
            ("val_loss", "val loss", "{:.4f}"),
            ("train_seconds", "seconds", "{:.1f}"),
        ),
    )


def data_line(data: dict) -> str:
    return f"- data: {data.get('splits')}; template {data.get('template')}"


def preference_report(
    run_dir: Path, data: dict, before: dict, after: dict, panel: Panel
) -> list[str]:
    """Pairwise accuracy and margin before/after, curves, and (policies) answers."""
    curves = curves_section(run_dir, panel)
    return [data_line(data), "", *pair_scores(before, after), "", *curves, *answers(before, after)]


def pair_scores(before: dict, after: dict) -> list[str]:
    lines = [
        "## Held-out pairs before and after training",
        "",
        "| metric | before | after |",
        "| --- | --- | --- |",
    ]
    for key, title in ROWS:
        if key in after:
            lines.append(f"| {title} | {fmt(before.get(key))} | {fmt(after[key])} |")
    return [*lines, "", f"{after.get('n', 0)} held-out pairs."]


def answers(before: dict, after: dict) -> list[str]:
    """Policies (dpo, kto): their answers before and after, beside the preferred one."""
    if not after.get("examples"):
        return []
    base = {e["question"]: e["answer"] for e in before.get("examples", [])}
    lines = [
        "## Example prompts (held-out)",
        "",
        "| prompt | chosen | before | after |",
        "| --- | --- | --- | --- |",
    ]
    for e in after["examples"]:
        lines.append(
            f"| {short(e['question'], 80)} | {short(e['chosen'])} | "
            f"{short(base.get(e['question'], ''))} | {short(e['answer'])} |"
        )
    return lines


PPO_TABLE = (
    ("train_reward", "train reward", "{:.4f}"),
    ("val_reward", "val reward", "{:.4f}"),
    ("train_seconds", "seconds", "{:.1f}"),
)


def ppo_sections(before: dict, after: dict, history: list[dict]) -> list[str]:
    lines = [
        "## Mean reward on held-out prompts (greedy answers)",
        "",
        "| | before | after |",
        "| --- | --- | --- |",
        f"| mean reward ({after.get('n', 0)} prompts) | {fmt(before.get('mean_reward'))} | "
        f"{fmt(after.get('mean_reward'))} |",
        "",
        "## PPO steps",
        "",
        "Mean reward of the sampled rollouts, KL to the reference (summed over the response) and "
        "response length, per step; validation reward per epoch:",
        "",
        *epoch_table(history, PPO_TABLE),
        "",
        "![ppo](plots/ppo.png)",
        "",
    ]
    return [*lines, *rewarded_examples(before, after)]


def rewarded_examples(before: dict, after: dict, width: int = 90) -> list[str]:
    """Held-out prompts with the answer before and after, each with its reward (ppo, grpo)."""
    lines = [
        "## Example prompts (held-out)",
        "",
        "| prompt | before (reward) | after (reward) |",
        "| --- | --- | --- |",
    ]
    base = {e["question"]: e for e in before.get("examples", [])}
    for e in after.get("examples", []):
        b = base.get(e["question"], {"answer": "", "reward": float("nan")})
        lines.append(
            f"| {short(e['question'], 80)} | {short(b['answer'], width)} ({b['reward']:.2f}) | "
            f"{short(e['answer'], width)} ({e['reward']:.2f}) |"
        )
    return lines


def plot_ppo(steps: list[dict], path: Path) -> None:
    """Reward, KL to the reference and response length per PPO step."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    xs = [s["step"] for s in steps]
    keys = ("reward", "kl", "response_length")
    titles = ("mean reward", "KL to reference", "response length")
    for ax, key, title in zip(axes, keys, titles, strict=True):
        ax.plot(xs, [s[key] for s in steps], color="tab:blue")
        ax.set(xlabel="PPO step", title=title)
        ax.grid(alpha=0.3)
    save(fig, path)


def ppo_report(run_dir: Path, data: dict, before: dict, after: dict) -> list[str]:
    history, steps = read_history(run_dir)
    if steps:
        plot_ppo(steps, run_dir / "plots" / "ppo.png")
    return [data_line(data), "", *ppo_sections(before, after, history)]
