"""A compare search trial seen from inside its run: each epoch's validation figure goes to the
Optuna study, and its pruner may stop the trial early (a curve already behind the others).

`tunelab compare` runs every trial as its own `tunelab train` process and names the trial in
TUNELAB_TRIAL (JSON: storage URL, study name, trial id, the validation metric); Optuna's RDB
storage lets this process report to the study the parent process created. Without the variable
(every ordinary run) nothing here runs and Optuna is not imported."""

import json
import os
from pathlib import Path

TRIAL_VARIABLE = "TUNELAB_TRIAL"
PRUNED_FILE = "pruned.json"  # written in the run folder: the parent marks the trial pruned


PRUNE_AFTER_TRIALS = 2  # the median of fewer finished curves says too little


def make_pruner(prune: bool):
    """The study's pruner. Optuna keeps it in the process, not in the storage: the parent and
    every trial's process build the same one from here."""
    import optuna

    if not prune:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=PRUNE_AFTER_TRIALS, n_warmup_steps=0)


def trial_env(
    storage: str, study: str, trial_id: int, metric: str, prune: bool = True
) -> dict[str, str]:
    """The environment variable that makes a `tunelab train` process a trial of `study`."""
    spec = {
        "storage": storage,
        "study": study,
        "trial_id": trial_id,
        "metric": metric,
        "prune": prune,
    }
    return {TRIAL_VARIABLE: json.dumps(spec)}


def report_epoch(record: dict, epoch: int, run_dir: Path) -> bool:
    """Report this epoch's validation figure; True when the study's pruner stops the trial."""
    raw = os.environ.get(TRIAL_VARIABLE)
    if not raw:
        return False
    import optuna

    spec = json.loads(raw)
    value = record.get(spec["metric"])
    if value is None:
        return False
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name=spec["study"],
        storage=spec["storage"],
        pruner=make_pruner(spec.get("prune", True)),
    )
    trial = optuna.trial.Trial(study, spec["trial_id"])
    trial.report(float(value), epoch)
    if not trial.should_prune():
        return False
    (run_dir / PRUNED_FILE).write_text(json.dumps({"epoch": epoch, spec["metric"]: value}))
    return True
