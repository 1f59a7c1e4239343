"""The before-evaluation of a base, kept once for every run of a compare that evaluates it alike.

Each run of a compare (search trials, seeds) evaluates the same base on the same rows before
training: minutes per run on 2 cores (a tools compare: 4 of a trial's 20). compare names a
folder of its own in $TUNELAB_KEPT_EVAL (as it does $TUNELAB_STATES_CACHE for frozen blocks);
there the figures are kept under a key written from everything that decides them, and read back
instead of evaluating again. The evaluation draws from a random state of its own
(`run_dir.own_random_state`), so a run that reads them trains exactly as one that evaluated.
A run outside a compare evaluates its base itself.

Written by hand: Transformers and the evaluation libraries cache no task's figures."""

import hashlib
import os
from functools import cache
from pathlib import Path

from transformers import PreTrainedModel

import tunelab
from tunelab.bench.cache import digest, model_identity, read_kept
from tunelab.bench.flow import local_folder
from tunelab.pipeline.run_dir import DATA_FILES
from tunelab.tasks import Task

KEPT_EVAL_VARIABLE = "TUNELAB_KEPT_EVAL"

# train.* settings only the training reads: runs that differ in them alone share the figures.
# The seed is one: a seeded new head shows in the model's identity, and the evaluation's own
# random state does not follow it.
TRAINING_ONLY = frozenset(
    [
        "epochs",
        "grad_accum",
        "micro_batch_tokens",
        "lr",
        "weight_decay",
        "scheduler",
        "warmup_ratio",
        "max_grad_norm",
        "seed",
        "monitor",
        "early_stopping_patience",
        "max_minutes",
        "max_tokens",
        "group_by_length",
        "log_every",
        "cache_frozen",
        "cache_max_gb",
        "report_to",
    ]
)


@cache
def code_digest() -> str:
    """tunelab's own source: figures kept by other code (a changed metric) are not read back."""
    root, hashed = Path(tunelab.__file__).parent, hashlib.sha256()
    for source in sorted(root.rglob("*.py")):
        hashed.update(source.relative_to(root).as_posix().encode() + source.read_bytes())
    return hashed.hexdigest()[:16]


def kept_before_path(task: Task, model) -> Path | None:
    """Where the base's before-figures are kept for this run's evaluation, or None where they
    are not kept: outside a compare, a Hub id (no files to key on), several processes (each must
    evaluate its share), a side run (its guard trains per run) or a model that is not a
    Transformers one."""
    kept, folder = os.environ.get(KEPT_EVAL_VARIABLE), local_folder(task.run.model_path)
    if not kept or folder is None or task.run.processes > 1:
        return None
    if not isinstance(model, PreTrainedModel):
        return None
    if task.side_run() is not None:
        return None
    settings = task.config.model_dump(mode="json", exclude={"output"})
    settings["train"] = {k: v for k, v in settings["train"].items() if k not in TRAINING_ONLY}
    key = [
        code_digest(),
        model_identity(folder, model, task.tokenizer),
        settings,
        read_kept(task.run.run_dir / DATA_FILES),  # the data files start_run fingerprinted
        task.split_texts(),
    ]
    return Path(kept) / f"{task.name}-{digest(key)}.json"
