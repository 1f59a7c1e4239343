"""What an epoch of the shared loop adds up: each batch's loss, correct rows, rows and real
tokens, and the epoch's record in metrics and train_summary."""

import torch


def batch_totals(batch: dict, loss: torch.Tensor, correct: torch.Tensor | None) -> torch.Tensor:
    """What one batch adds to an epoch's totals: loss sum, correct rows, rows, real tokens."""
    rows = len(batch["input_ids"])
    return torch.tensor(
        [
            loss.item() * rows,
            float("nan") if correct is None else correct.item(),
            rows,
            batch["attention_mask"].sum().item(),
        ]
    )


def epoch_record(totals: torch.Tensor, seconds: float) -> dict:
    record = {
        "train_loss": (totals[0] / totals[2]).item(),
        "train_tokens": int(totals[3]),
        "train_seconds": seconds,
    }
    if not totals[1].isnan():  # only tasks that predict a class count correct rows
        record["train_accuracy"] = (totals[1] / totals[2]).item()
    return record
