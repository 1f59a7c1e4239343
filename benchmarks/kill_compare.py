"""Kill -9 (or Ctrl-C) a real `tunelab compare` at random moments — inside a search trial, between
trials, in a seed run, while it writes its study, search.json or leaderboard — run the same command
again until it ends, and check that the leaderboard is the uninterrupted one's: the same settings
chosen on validation, the same trials ended on their own with the same scores, the same test
score for every seed, the same verdicts. A searched experiment on the real stories260K Llama (two
variants, three trials each, two seeds).

    .venv/bin/python benchmarks/kill_compare.py --kills 8

Prints a table and writes benchmarks/results/kill_compare.json (the CPU named). Not a speed
benchmark: it shows that a kill anywhere in compare's bookkeeping loses nothing and changes
nothing."""

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tunelab.hardware import write_measurement

ROOT = Path(__file__).resolve().parent.parent
STORIES = ROOT / "tests" / "assets" / "stories260K"
RESULTS = ROOT / "benchmarks" / "results" / "kill_compare.json"
SAME = 1e-9  # scores are read back from JSON: an identical run gives identical figures
sys.path.insert(0, str(ROOT))

SEARCH = {"trials": 3, "train.lr": {"log": [1.0e-3, 5.0e-2]}}
VARIANTS = [
    {"name": "head", "overrides": ["method.name=head"]},
    {"name": "lora", "overrides": ["method.name=lora", "method.r=4"]},
]
TRAIN = ["train.epochs=2", "train.batch_size=8", "train.log_every=1", "train.weight_decay=0.0"]


def write_experiment(folder: Path, name: str) -> Path:
    """The experiment file; its runs go to folder/name."""
    from tests.conftest import toy_rows, write_csv

    data = folder / "toy.csv"
    if not data.is_file():
        write_csv(data, toy_rows(160))
    base = {"model": {"name": str(STORIES)}, "data": {"path": str(data), "max_length": 32}}
    (folder / "base.yaml").write_text(yaml.safe_dump(base))
    spec = {
        "base": "base.yaml",
        "output_dir": str(folder / name),
        "overrides": TRAIN,
        "seeds": [1, 2],
        "search": SEARCH,
        "variants": VARIANTS,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def compare(experiment: Path, log: Path) -> subprocess.Popen:
    with log.open("a") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tunelab.cli", "compare", str(experiment)],
            stdout=out,
            stderr=subprocess.STDOUT,
            # a background shell starts its children with Ctrl-C ignored: it would not stop
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )


def landed(log: Path, finished: bool) -> str:
    """Where the kill landed: the last progress line compare had printed."""
    if finished:
        return "after the end"
    lines = [line for line in log.read_text().splitlines() if line.startswith("[")]
    if not lines:
        return "starting"
    last = lines[-1]
    if "trial" in last:
        return "in a search trial"
    return "in a seed run" if "/seed-" in last else "between runs"


def outcome(out: Path) -> dict:
    """What a finished experiment decided and measured, without times and paths."""
    rows = json.loads((out / "leaderboard.json").read_text())
    board = {
        r["method"]: {
            "seed_scores": r.get("seed_scores"),
            "score": r["score"],
            "verdict": r.get("verdict"),
            "status": r["status"],
        }
        for r in rows
    }
    for variant in VARIANTS:
        record = json.loads((out / variant["name"] / "search.json").read_text())
        ended = sorted(
            (json.dumps(t["params"], sort_keys=True), t["value"])
            for t in record["trials"]
            if t["state"] in ("complete", "pruned")
        )
        board[variant["name"]]["chosen"] = record["chosen"]
        board[variant["name"]]["ended_trials"] = ended
    return board


def differences(got: dict, expected: dict) -> list[str]:
    """Where a resumed experiment's outcome differs from the uninterrupted one's."""
    found = []
    for method, want in expected.items():
        have = got.get(method, {})
        for key, value in want.items():
            if isinstance(value, float) and isinstance(have.get(key), float):
                same = abs(value - have[key]) <= SAME
            else:
                same = value == have.get(key)
            if not same:
                found.append(f"{method}.{key}: {have.get(key)} != {value}")
    return found


def progress_lines(log: Path) -> int:
    """How many progress lines ("[head] trial 0: ...", "[lora/seed-2] running") compare wrote."""
    return (
        sum(line.startswith("[") for line in log.read_text().splitlines()) if log.is_file() else 0
    )


def killed_then_rerun(folder: Path, name: str, moment: tuple[int, float], how) -> dict:
    """Kill once the run has printed `moment[0]` progress lines, `moment[1]` seconds later: a
    moment read from compare's own output, whatever the machine's load."""
    experiment, log = write_experiment(folder, name), folder / f"{name}.log"
    lines, delay = moment
    process = compare(experiment, log)
    while process.poll() is None and progress_lines(log) < lines:
        time.sleep(0.01)
    time.sleep(delay)
    finished_first = process.poll() is not None
    process.send_signal(how)
    process.wait()
    where = landed(log, finished_first)
    reruns, code = 0, None
    while code != 0 and reruns < 3:
        code = compare(experiment, log).wait()
        reruns += 1
    notes = [
        line for line in log.read_text().splitlines() if "interrupted" in line or "error" in line
    ]
    return {
        "after_line": lines,
        "delay_s": round(delay, 2),
        "signal": how.name,
        "landed": where,
        "reruns": reruns,
        "exit": code,
        "notes": notes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        if compare(write_experiment(folder, "straight"), folder / "straight.log").wait() != 0:
            raise SystemExit((folder / "straight.log").read_text()[-2000:])
        seconds = time.perf_counter() - started
        expected = outcome(folder / "straight")
        progress = progress_lines(folder / "straight.log")
        rows = []
        for i in range(args.kills):
            how = signal.SIGINT if i % 3 == 2 else signal.SIGKILL  # every third a Ctrl-C
            moment = (rng.randrange(progress), rng.uniform(0.0, 3.0))
            row = killed_then_rerun(folder, f"kill-{i}", moment, how)
            found = differences(outcome(folder / f"kill-{i}"), expected) if row["exit"] == 0 else []
            row.update(same=row["exit"] == 0 and not found, differences=found)
            rows.append(row)
            # written after every kill: a long benchmark stopped early keeps what it measured
            write_measurement(
                RESULTS,
                {"uninterrupted_seconds": seconds, "uninterrupted": expected, "kills": rows},
            )
            print(
                f"kill {i}: {how.name:7} {row['delay_s']:.1f} s after progress line "
                f"{row['after_line']} ({row['landed']}) -> "
                f"reruns {row['reruns']}, exit {row['exit']}: "
                f"{'same' if row['same'] else 'DIFFERENT ' + '; '.join(found)}",
                flush=True,
            )
    phases = ["starting", "in a search trial", "between runs", "in a seed run", "after the end"]
    print(f"\n{'kills':>5} " + " ".join(f"{p:>17}" for p in phases) + f" {'same leaderboard':>16}")
    print(
        f"{len(rows):>5} "
        + " ".join(f"{sum(r['landed'] == p for r in rows):>17}" for p in phases)
        + f" {sum(r['same'] for r in rows):>16}"
    )
    print(f"uninterrupted compare: {seconds:.0f} s; written: {RESULTS}")


if __name__ == "__main__":
    main()
