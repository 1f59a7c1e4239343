"""Markdown pieces every report section uses."""


def short(text: str, width: int = 90) -> str:
    """One table cell: whitespace folded, pipes escaped, cut at `width` characters."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def fmt(value) -> str:
    return "–" if value is None else f"{value:.4f}"


# (key of a per-epoch record, column title, format)
TableColumn = tuple[str, str, str]


def epoch_table(history: list[dict], columns: tuple[TableColumn, ...]) -> list[str]:
    """One row per epoch of metrics.jsonl, an `epoch` column first."""
    titles = " | ".join(title for _, title, _ in columns)
    lines = [f"| epoch | {titles} |", "| --- " * (len(columns) + 1) + "|"]
    for h in history:
        cells = " | ".join(form.format(h[key]) for key, _, form in columns)
        lines.append(f"| {h['epoch']} | {cells} |")
    return lines
