"""Report sections of the preference tasks: pairwise accuracy and margin before/after, curves,
and (DPO) answers of the policy before and after next to the preferred answer."""

from tunelab.report.markdown import fmt, short

ROWS = [
    ("accuracy", "pairwise accuracy (ties count half)"),
    ("margin", "mean margin (chosen - rejected)"),
    ("policy_accuracy", "policy prefers chosen by log-probability"),
]


def preference_sections(before: dict, after: dict, history: list[dict]) -> list[str]:
    lines = ["## Held-out pairs before and after training", "", "| metric | before | after |",
             "| --- | --- | --- |"]  # fmt: skip
    for key, title in ROWS:
        if key in after:
            lines.append(f"| {title} | {fmt(before.get(key))} | {fmt(after[key])} |")
    lines += ["", f"{after.get('n', 0)} held-out pairs.", "", "## Training curves", "",
              "| epoch | train loss | val loss | seconds |", "| --- " * 4 + "|"]  # fmt: skip
    for h in history:
        lines.append(
            f"| {h['epoch']} | {h['train_loss']:.4f} | {h['val_loss']:.4f} | {h['train_seconds']:.1f} |"
        )
    lines += ["", "![curves](plots/curves.png)", ""]
    if after.get("examples"):
        base = {e["question"]: e["answer"] for e in before.get("examples", [])}
        lines += ["## Example prompts (held-out)", "", "| prompt | chosen | before | after |",
                  "| --- | --- | --- | --- |"]  # fmt: skip
        for e in after["examples"]:
            lines.append(f"| {short(e['question'], 80)} | {short(e['chosen'])} | "
                         f"{short(base.get(e['question'], ''))} | {short(e['answer'])} |")  # fmt: skip
    return lines


def ppo_sections(before: dict, after: dict, history: list[dict]) -> list[str]:
    lines = ["## Mean reward on held-out prompts (greedy answers)", "", "| | before | after |",
             "| --- | --- | --- |", f"| mean reward ({after.get('n', 0)} prompts) | {fmt(before.get('mean_reward'))} | "
             f"{fmt(after.get('mean_reward'))} |", "", "## PPO steps", "",
             "Mean reward of the sampled rollouts, KL to the reference (summed over the response) and "
             "response length, per step; validation reward per epoch:", "",
             "| epoch | train reward | val reward | seconds |", "| --- " * 4 + "|"]  # fmt: skip
    for h in history:
        lines.append(
            f"| {h['epoch']} | {h['train_reward']:.4f} | {h['val_reward']:.4f} | {h['train_seconds']:.1f} |"
        )
    lines += ["", "![ppo](plots/ppo.png)", "", "## Example prompts (held-out)", "",
              "| prompt | before (reward) | after (reward) |", "| --- | --- | --- |"]  # fmt: skip
    base = {e["question"]: e for e in before.get("examples", [])}
    for e in after.get("examples", []):
        b = base.get(e["question"], {"answer": "", "reward": float("nan")})
        lines.append(f"| {short(e['question'], 80)} | {short(b['answer'])} ({b['reward']:.2f}) | "
                     f"{short(e['answer'])} ({e['reward']:.2f}) |")  # fmt: skip
    return lines
