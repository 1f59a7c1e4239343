"""`tunelab doctor CONFIG`: a pre-flight report of the pitfalls that make a fine-tune silently
worse - a stop token never trained, a doubled BOS, rows with nothing to learn, test rows that are
training rows, an inference prompt that is not the training prompt, label imbalance, rows cut by
max_length, memory. `train` runs the same checks after preparing its data and stops on the fatal
ones. No library has this pass, so it is written here; each check is a small function of the
prepared task that returns its findings."""

from tunelab.doctor.findings import Finding, fatal_line, preflight, run_checks

__all__ = ["Finding", "diagnose", "fatal_line", "preflight", "run_checks"]


def diagnose(config) -> tuple[list[Finding], dict]:
    """Prepare the config's data as `train` would (no model weights loaded) and check it."""
    from tunelab.errors import DataError, TunelabError
    from tunelab.pipeline import open_task

    task = open_task(config)
    try:
        summary = task.prepare()
    except DataError:
        raise  # a malformed file: its one-line error, not a finding
    except TunelabError as exc:  # the data reads but cannot train (an empty split, ...)
        return [Finding("data", "fatal", str(exc))], {}
    return run_checks(task, summary), summary
