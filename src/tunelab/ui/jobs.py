"""The UI's jobs: `tunelab` commands run as subprocesses in their own session, so that they
outlive a closed page and a restarted UI. Each job leaves `jobs/KIND/NAME.json` (its command, pid,
start time, whether the user stopped it) and `jobs/KIND/NAME.log` (its output) in the workspace
(KIND: train, compare, export);
a job's state is read back from those files and the process table, never held in memory."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tunelab.errors import TunelabError
from tunelab.files import write_whole
from tunelab.ui.workspace import Workspace, check_name


def job_file(workspace: Workspace, kind: str, name: str) -> Path:
    return workspace.root / "jobs" / kind / f"{check_name(name)}.json"


def read_job(workspace: Workspace, kind: str, name: str) -> dict | None:
    path = job_file(workspace, kind, name)
    return json.loads(path.read_text()) if path.is_file() else None


def launch(workspace: Workspace, kind: str, name: str, args: list[str]) -> dict:
    """Start `tunelab ARGS` as job `name` of its kind (one at a time); its log starts afresh."""
    if is_running(read_job(workspace, kind, name)):
        raise TunelabError(f"{name} is already running")
    log = job_file(workspace, kind, name).with_suffix(".log")
    log.parent.mkdir(exist_ok=True)  # once, when a job of this kind first starts
    log.unlink(missing_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tunelab.cli.job", *args],  # `tunelab`, Ctrl-C restored
            cwd=workspace.root,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},  # the log follows the run as it goes
            start_new_session=True,  # its own process group: survives the UI, stopped as one
        )
    job = {"name": name, "kind": kind, "args": args, "pid": process.pid, "started": time.time()}
    write_whole(job_file(workspace, kind, name), json.dumps(job))
    return job


def is_running(job: dict | None) -> bool:
    if not job or job.get("ended"):
        return False
    pid = job["pid"]
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)  # reaps our own child once it has exited
        if done == pid:
            return False
    except ChildProcessError:
        pass  # started by an earlier UI process: not our child, ask the process table
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(workspace: Workspace, kind: str, name: str, timeout_s: float = 30.0) -> None:
    """Ctrl-C to the job's process group: tunelab keeps its last complete checkpoint (the
    atomic one `--resume` continues from) and exits."""
    job = read_job(workspace, kind, name)
    if not is_running(job):
        raise TunelabError(f"{name} is not running")
    os.killpg(job["pid"], signal.SIGINT)
    deadline = time.monotonic() + timeout_s
    while is_running(job) and time.monotonic() < deadline:
        time.sleep(0.2)
    if is_running(job):
        os.killpg(job["pid"], signal.SIGKILL)
    job["stopped"] = True
    write_whole(job_file(workspace, kind, name), json.dumps(job))


def log_tail(workspace: Workspace, kind: str, name: str, lines: int = 20) -> list[str]:
    path = job_file(workspace, kind, name).with_suffix(".log")
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    return [line for line in text.replace("\r", "\n").splitlines() if line.strip()][-lines:]


def last_error(workspace: Workspace, kind: str, name: str) -> str | None:
    """The one-line error a failed tunelab command printed, if any."""
    errors = [line for line in log_tail(workspace, kind, name, 200) if line.startswith("error:")]
    return errors[-1] if errors else None
