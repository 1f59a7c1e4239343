"""Report sections of the generative tasks: scores before/after, the general set (what tuning
cost), and example questions with the base and the tuned answers (seed 003 did this by hand)."""

from pathlib import Path

from tunelab.charts import Panel, Series, curves_section, plot_before_after
from tunelab.charts.markdown_cells import fmt, short

PERPLEXITY_PANEL = Panel(
    "Perplexity",
    "perplexity",
    (Series("val_perplexity", "validation"),),
    yscale="log",
    table=(
        ("train_loss", "train loss", "{:.4f}"),
        ("val_loss", "val loss", "{:.4f}"),
        ("val_perplexity", "val perplexity", "{:.3f}"),
        ("train_seconds", "seconds", "{:.1f}"),
    ),
)

ROWS = [
    ("call_accuracy", "calls exactly right (or none where none is due)", True),
    ("no_call_rate", "no call where none is due", True),
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
                f"| {title} | {fmt(before.get(key))} | {fmt(after[key])} | "
                f"{'higher' if higher else 'lower'} |"
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
        f"- data: {parts} (rows or blocks){template}{mixed}; over "
        f"{data.get('max_length', data.get('block_size'))} "
        f"tokens: {truncated} truncated, {dropped} dropped"
    )


def plot_scores(before: dict, after: dict, path: Path) -> bool:
    """Grouped bars of the answer scores (and general ROUGE-L); False when there are none."""
    values = [
        (t, before.get(k) or 0.0, after[k]) for k, t, _ in ROWS[:4] if after.get(k) is not None
    ]
    if "general" in after:
        general = ("general ROUGE-L", before["general"]["rouge_l"], after["general"]["rouge_l"])
        values.append(general)
    if values:
        plot_before_after(values, "Held-out scores before and after", path)
    return bool(values)


SCOPE_KEYS = (
    ("refusal_rate", "refusals (off-topic)"),
    ("false_refusal_rate", "false refusals"),
    ("key_fact_hit_rate", "key facts"),
    ("invented_fact_rate", "invented facts (off-topic)"),
)


def plot_scope(before: dict, sets: dict, path: Path) -> bool:
    """Each set's refusal, false-refusal and key-fact figures before, after, and with the guard."""
    guarded = any("with_guard" in scores for scores in sets.values())
    values = []
    for name, scores in sets.items():
        was = before.get("sets", {}).get(name, {})
        for key, title in SCOPE_KEYS[:3]:
            if scores.get(key) is not None:
                row = (f"{name}: {title}", was.get(key), scores[key])
                values.append((*row, scores["with_guard"][key]) if guarded else row)
    series = ("before", "after", "after + guard")[: 3 if guarded else 2]
    if values:
        plot_before_after(
            values, "Held-out sets: refusals, false refusals, key facts", path, series
        )
    return bool(values)


def scope_table(run_dir: Path, before: dict, after: dict) -> list[str]:
    """Each held-out set (test and eval.test_sets) before and after, with the scope guard in
    front, and the guard's own decisions."""
    sets = after.get("sets", {})
    if len(sets) < 2 and not any("with_guard" in s for s in sets.values()):
        return []
    lines = [
        "## Scope: each held-out set before / after / after with the guard / guard alone",
        "",
        "| set | rows (in / off) | " + " | ".join(t for _, t in SCOPE_KEYS) + " |",
        "| --- " * (2 + len(SCOPE_KEYS)) + "|",
    ]
    for name, scores in sets.items():
        was = before.get("sets", {}).get(name, {})
        guarded, alone = scores.get("with_guard", {}), scores.get("guard_alone", {})
        cells = [
            " / ".join(fmt(s.get(key)) for s in (was, scores, guarded, alone) if s)
            for key, _ in SCOPE_KEYS
        ]
        rows = f"{scores.get('n_in_domain', 0)} / {scores.get('n_off_topic', 0)}"
        lines.append(f"| {name} | {rows} | " + " | ".join(cells) + " |")
    plotted = plot_scope(before, sets, run_dir / "plots" / "scope.png")
    picture = ["![scope](plots/scope.png)", ""] if plotted else []
    return [*lines, "", *picture, *off_topic_examples(sets), ""]


def off_topic_examples(sets: dict) -> list[str]:
    """One off-topic question of each source, with the tuned answer and the guard's verdict."""
    seen, lines = set(), []
    for name, scores in sets.items():
        for row in scores.get("answers", []):
            source = row.get("source")
            if source and source not in seen and not row.get("facts"):
                seen.add(source)
                question, answer = short(row["question"], 70), short(row["answer"])
                lines.append(f"| {name} | {source} | {question} | {answer} |")
    if not lines:
        return []
    header = ["| set | source | off-topic question | tuned answer (no guard) |", "| --- " * 4 + "|"]
    return [*header, *lines]


def generative_report(run_dir: Path, data: dict, before: dict, after: dict) -> list[str]:
    curves = curves_section(run_dir, PERPLEXITY_PANEL)
    scores_plot = plot_scores(before, after, run_dir / "plots" / "scores.png")
    return [
        data_line(data),
        "",
        "## Held-out scores before and after fine-tuning",
        "",
        *scores_table(before, after),
        "",
        *(["![scores](plots/scores.png)", ""] if scores_plot else []),
        *scope_table(run_dir, before, after),
        *curves,
        *answers_table(before, after),
    ]
