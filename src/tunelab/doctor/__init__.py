"""`tunelab doctor CONFIG`: a pre-flight report of the pitfalls that make a fine-tune silently
worse - a stop token never trained, a doubled BOS, rows with nothing to learn, test rows that are
training rows, an inference prompt that is not the training prompt, label imbalance, rows cut by
max_length, memory. `train` runs the same checks after preparing its data and stops on the fatal
ones. No library has this pass, so it is written here; each check is a small function of the
prepared task that returns its findings (`pipeline.diagnose` prepares the task)."""

from tunelab.doctor.findings import Finding, fatal_line, preflight, run_checks

__all__ = ["Finding", "fatal_line", "preflight", "run_checks"]
