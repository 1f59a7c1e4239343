"""The before-evaluation of a base, kept once for every run that evaluates it alike.

Each run of a compare (search trials, seeds) and each `train` of one config at another learning
rate evaluates the same base on the same rows before training: minutes per run on 2 cores (a
tools run: 4 of its 20). The figures are kept under a key written from everything that decides
them, and read back instead of evaluating again. The evaluation draws from a random state of its
own (`own_random_state`), so a run that reads them trains exactly as one that evaluated.

Written by hand: Transformers and the evaluation libraries cache no task's figures."""

import hashlib
from functools import cache
from pathlib import Path

from transformers import PreTrainedModel

import tunelab
from tunelab.bench.cache import digest, model_identity
from tunelab.bench.flow import local_folder
from tunelab.models.embedded import cache_root
from tunelab.pipeline.run_dir import data_fingerprints
from tunelab.tasks import Task

# train.* settings only the training reads: runs that differ in them alone share the figures.
# The seed is one: a seeded new head shows in the model's identity, and the evaluation's own
# random state does not follow it.
TRAINING_ONLY = frozenset(
    {
        "epochs", "grad_accum", "micro_batch_tokens", "lr", "weight_decay", "scheduler",
        "warmup_ratio", "max_grad_norm", "seed", "monitor", "early_stopping_patience",
        "max_minutes", "max_tokens", "group_by_length", "log_every", "cache_frozen",
        "cache_max_gb", "report_to",
    }
)  # fmt: skip


@cache
def code_digest() -> str:
    """tunelab's own source: figures kept by other code (a changed metric) are not read back."""
    root, hashed = Path(tunelab.__file__).parent, hashlib.sha256()
    for source in sorted(root.rglob("*.py")):
        hashed.update(source.relative_to(root).as_posix().encode() + source.read_bytes())
    return hashed.hexdigest()[:16]


def kept_before_path(task: Task, model) -> Path | None:
    """Where the base's before-figures are kept for this run's evaluation, or None where they
    are not kept: a Hub id (no files to key on), several processes (each must evaluate its
    share), a side run (its guard trains per run) or a model that is not a Transformers one."""
    folder = local_folder(task.run.model_path)
    if folder is None or task.run.processes > 1 or not isinstance(model, PreTrainedModel):
        return None
    if task.side_run() is not None:
        return None
    settings = task.config.model_dump(mode="json", exclude={"output"})
    settings["train"] = {k: v for k, v in settings["train"].items() if k not in TRAINING_ONLY}
    key = [
        code_digest(),
        model_identity(folder, model, task.tokenizer),
        settings,
        data_fingerprints(task.config),
        task.split_texts(),
    ]
    return cache_root() / "eval-before" / f"{task.name}-{digest(key)}.json"
