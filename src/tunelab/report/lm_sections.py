"""Report sections of the generative tasks: scores before/after, the general set (what tuning
cost), and example questions with the base and the tuned answers (seed 003 did this by hand)."""

from tunelab.report.markdown import curves_section, fmt, short
from tunelab.report.plots import plot_scores

ROWS = [
    ("key_fact_hit_rate", "in-domain key-fact hit rate", True),
    ("rouge_l", "in-domain ROUGE-L", True),
    ("refusal_rate", "off-topic refusal rate", True),
    ("false_refusal_rate", "in-domain false-refusal rate", False),
    ("perplexity", "test perplexity", False),
]


def scores_table(before: dict, after: dict) -> list[str]:
    lines = ["| metric (held-out) | before | after | better is |", "| --- | --- | --- | --- |"]
    for key, title, higher in ROWS:
        if after.get(key) is not None:
            lines.append(
                f"| {title} | {fmt(before.get(key))} | {fmt(after[key])} | {'higher' if higher else 'lower'} |"
            )
    for key, title in (("rouge_l", "general ROUGE-L"), ("perplexity", "general perplexity")):
        if "general" in after:
            lines.append(
                f"| {title} | {fmt(before['general'][key])} | {fmt(after['general'][key])} | "
                f"{'higher' if key == 'rouge_l' else 'lower'} |"
            )
    return lines


def answers_table(before: dict, after: dict) -> list[str]:
    if not after.get("examples"):
        return []
    base = {row["question"]: row["answer"] for row in before.get("answers", [])}
    lines = [
        "## Example questions (held-out)",
        "",
        "| question | reference | base model | tuned model |",
        "| --- | --- | --- | --- |",
    ]
    for row in after["examples"]:
        lines.append(
            f"| {short(row['question'], 80)} | {short(row['reference'])} | "
            f"{short(base.get(row['question'], ''))} | {short(row['answer'])} |"
        )
    return [*lines, ""]


def history_table(history: list[dict]) -> list[str]:
    lines = ["| epoch | train loss | val loss | val perplexity | seconds |", "| --- " * 5 + "|"]
    for h in history:
        lines.append(
            f"| {h['epoch']} | {h['train_loss']:.4f} | {h['val_loss']:.4f} | "
            f"{h['val_perplexity']:.3f} | {h['train_seconds']:.1f} |"
        )
    return lines


def data_line(data: dict) -> str:
    splits = data.get("splits", {})
    parts = ", ".join(f"{k} {v.get('encoded_rows', v.get('blocks'))}" for k, v in splits.items())
    dropped = sum(v.get("dropped_overlong", 0) for v in splits.values())
    truncated = sum(v.get("truncated_overlong", 0) for v in splits.values())
    mix = data.get("mix")
    mixed = (
        f"; mix {', '.join(f'{k}: {v}' for k, v in mix.items())}" if mix and len(mix) > 1 else ""
    )
    template = f"; template {data['template']}" if data.get("template") else ""
    return (
        f"- data: {parts} (rows or blocks){template}{mixed}; over {data.get('max_length', data.get('block_size'))} "
        f"tokens: {truncated} truncated, {dropped} dropped"
    )


def lm_sections(run_dir, before: dict, after: dict, history: list[dict]) -> list[str]:
    plot_scores(before, after, [(k, t) for k, t, _ in ROWS[:4]], run_dir / "plots" / "scores.png")
    return [
        "## Held-out scores before and after fine-tuning",
        "",
        *scores_table(before, after),
        "",
        "![scores](plots/scores.png)",
        "",
        *curves_section(history_table(history)),
        *answers_table(before, after),
    ]
