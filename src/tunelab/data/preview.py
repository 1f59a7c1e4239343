"""`tunelab data preview`: what the model will be trained on, with the trained tokens marked."""

from rich.text import Text

from tunelab.data.lm_encode import IGNORE

MARK_OPEN, MARK_CLOSE = "[[", "]]"


def spans(example: dict) -> list[tuple[list[int], bool]]:
    """Runs of consecutive ids that are all trained or all not."""
    runs: list[tuple[list[int], bool]] = []
    for token, label in zip(example["input_ids"], example["labels"], strict=True):
        trained = label != IGNORE
        if runs and runs[-1][1] == trained:
            runs[-1][0].append(token)
        else:
            runs.append(([token], trained))
    return runs


def marked_text(example: dict, tokenizer) -> Text:
    """The decoded example; trained spans inside [[ ]] and in green, the rest dimmed."""
    text = Text()
    for ids, trained in spans(example):
        piece = tokenizer.decode(ids)
        if trained:
            text.append(f"{MARK_OPEN}{piece}{MARK_CLOSE}", style="bold green")
        else:
            text.append(piece, style="dim")
    return text
