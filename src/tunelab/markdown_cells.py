"""Markdown pieces every report section uses."""


def short(text: str, width: int = 90) -> str:
    """One table cell: whitespace folded, pipes escaped, cut at `width` characters."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 1] + "…"


def fmt(value) -> str:
    return "–" if value is None else f"{value:.4f}"


def curves_section(history_lines: list[str]) -> list[str]:
    return ["## Training curves", "", *history_lines, "", "![curves](plots/curves.png)", ""]
