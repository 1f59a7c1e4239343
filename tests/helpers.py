"""Run tunelab on tiny models the way a user does, through the config and the pipeline."""

from pathlib import Path

from tunelab.config import load_config
from tunelab.pipeline import run

FAST_TRAIN = [
    "train.epochs=3",
    "train.batch_size=8",
    "train.lr=0.005",
    "train.log_every=1",
    "train.weight_decay=0.0",
    "eval.examples=4",
]


def train_tiny(
    model_dir: str,
    data: Path,
    run_dir: Path,
    method: str = "head",
    extra: list[str] = (),
    resume: bool = False,
) -> dict:
    overrides = [
        f"model.name={model_dir}",
        f"data.path={data}",
        f"method.name={method}",
        f"output.dir={run_dir}",
        "data.max_length=32",
        *FAST_TRAIN,
        *extra,
    ]
    return run(load_config(None, overrides), resume=resume)
