"""Findings and the list of checks the doctor (and `train`, before it trains) runs."""

from dataclasses import dataclass
from typing import Literal

Severity = Literal["fatal", "warn", "ok"]


@dataclass(frozen=True)
class Finding:
    check: str  # the pitfall's short name
    severity: Severity  # fatal: `train` refuses to start; warn: worth a look; ok: checked, fine
    message: str


def run_checks(task, summary: dict) -> list[Finding]:
    from tunelab.doctor.data_checks import DATA_CHECKS
    from tunelab.doctor.lm_checks import LM_CHECKS
    from tunelab.doctor.machine import machine_check
    from tunelab.doctor.memory import memory_check

    findings: list[Finding] = []
    for check in (*DATA_CHECKS, *LM_CHECKS):
        findings.extend(check(task, summary))
    findings += [memory_check(task), machine_check(task)]
    return findings


def preflight(task, summary: dict) -> list[Finding]:
    """What `train` checks before it trains: the encoded-row checks, cheap next to an epoch."""
    from tunelab.doctor.lm_checks import LM_CHECKS

    return [finding for check in LM_CHECKS for finding in check(task, summary)]


def fatal_line(findings: list[Finding]) -> str | None:
    """The one line `train` stops with, or None when nothing is fatal."""
    fatal = [f for f in findings if f.severity == "fatal"]
    if not fatal:
        return None
    return f"{fatal[0].check}: {fatal[0].message} (tunelab doctor lists every finding)"
