"""Kill -9 (or Ctrl-C) real `tunelab train` processes at random times, resume them, and check
that each resumed run ends with the weights and metrics of an uninterrupted one: the shared loop
(classify with LoRA), a TRL-bridged task (reward) and PPO, on the real stories260K Llama. Each row
says where the kill landed: while starting (no run folder yet), before the first checkpoint,
between checkpoints, or after the run ended.

    .venv/bin/python benchmarks/kill_resume.py --kills 10

Prints a table and writes benchmarks/results/kill_resume.json. Not a speed benchmark: it
shows that no kill point leaves a run that cannot finish, or finishes differently."""

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.torch import load_file

from tunelab.hardware import write_measurement  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STORIES = ROOT / "tests" / "assets" / "stories260K"
RESULTS = ROOT / "benchmarks" / "results" / "kill_resume.json"
SAME = 1e-6  # largest weight or metric difference still "the same run" (float32 rounding)
sys.path.insert(0, str(ROOT))


def toy_data(folder: Path) -> tuple[Path, Path]:
    from tests.conftest import toy_rows, write_csv

    rng = random.Random(0)
    pairs = folder / "pairs.jsonl"
    good, bad = ["happy", "kind", "sunny"], ["angry", "mean", "dark"]
    pairs.write_text("".join(json.dumps({
        "prompt": f"Tell me about the cat number {i}.",
        "chosen": f"The cat is {rng.choice(good)} and {rng.choice(good)}.",
        "rejected": f"The cat is {rng.choice(bad)} and {rng.choice(bad)}."}) + "\n"
        for i in range(100)))  # fmt: skip
    return write_csv(folder / "toy.csv", toy_rows(160)), pairs


def case_overrides(case: str, csv: Path, pairs: Path, reward_run: Path | None) -> list[str]:
    common = [f"model.name={STORIES}", "train.batch_size=8", "train.log_every=1"]
    if case == "loop":
        return [*common, f"data.path={csv}", "method.name=lora", "train.epochs=4",
                "train.lr=0.005", "data.max_length=32"]  # fmt: skip
    preference = [*common, f"data.path={pairs}", "task.template=qa", "method.name=lora",
                  "method.target_modules=all-linear", "eval.max_new_tokens=12"]  # fmt: skip
    if case == "trl":
        return [*preference, "task.name=reward", "train.epochs=3", "train.lr=0.01"]
    return [*preference, "task.name=ppo", f"task.reward_run={reward_run}", "train.epochs=2",
            "train.lr=0.003"]  # fmt: skip


def train(overrides: list[str], run_dir: Path, resume: bool = False) -> subprocess.Popen:
    command = [sys.executable, "-m", "tunelab.cli", "train", *overrides, f"output.dir={run_dir}"]
    return subprocess.Popen(
        [*command, *(["--resume"] if resume else [])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # a background shell starts its children with Ctrl-C ignored: the run would not stop
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def score(run_dir: Path) -> float:
    return json.loads((run_dir / "train_summary.json").read_text())["score"]


def phase(run_dir: Path, finished: bool) -> str:
    """Where a kill landed, read from what the run had written."""
    if finished:
        return "after the end"
    checkpoints = run_dir / "checkpoints"  # the loop's and PPO's; TRL's are trl/checkpoint-N
    if (checkpoints.is_dir() and any(checkpoints.iterdir())) or any(
        run_dir.glob("trl/checkpoint-*")
    ):
        return "between checkpoints"
    return "before 1st checkpoint" if run_dir.is_dir() else "starting"


def saved_weights(run_dir: Path) -> dict[str, np.ndarray]:
    """Every tensor the finished run saved (its model or adapter), by file and name."""
    tensors = {}
    for path in sorted(run_dir.glob("*/*.safetensors")):
        if path.parent.name != "checkpoints":
            for name, tensor in load_file(path).items():
                tensors[f"{path.parent.name}/{path.name}:{name}"] = tensor.float().numpy()
    return tensors


def weights_gap(run_dir: Path, straight: Path) -> float | None:
    """The largest difference between a resumed run's saved weights and the uninterrupted
    run's (None when they do not hold the same tensors)."""
    got, expected = saved_weights(run_dir), saved_weights(straight)
    if set(got) != set(expected) or not got:
        return None
    return max(float(np.abs(got[k] - expected[k]).max()) for k in expected)


def metrics_gap(run_dir: Path, straight: Path) -> float | None:
    """The largest difference between the two runs' numeric figures in eval_after.json."""
    got, expected = (json.loads((d / "eval_after.json").read_text()) for d in (run_dir, straight))
    numbers = {k: v for k, v in expected.items() if isinstance(v, int | float)}
    if any(not isinstance(got.get(k), int | float) for k in numbers):
        return None
    return max((abs(got[k] - v) for k, v in numbers.items()), default=0.0)


def events(run_dir: Path) -> list[dict]:
    """The run's metrics.jsonl so far (a line still being written is left out)."""
    path = run_dir / "metrics.jsonl"
    text = path.read_text() if path.is_file() else ""
    return [json.loads(line) for line in text.splitlines()[: text.count("\n")] if line]


def epoch_shape(run_dir: Path) -> tuple[int, int]:
    """A finished run's epochs and training steps logged per epoch."""
    logged = events(run_dir)
    epochs = sum(e["event"] == "eval" for e in logged)
    return epochs, sum(e["event"] == "train" for e in logged) // max(epochs, 1)


@dataclass(frozen=True)
class Moment:
    """When to kill: `seconds` after the start (while starting up), or once `epochs` epochs have
    been evaluated and `steps` more training steps logged, whatever the machine's load."""

    seconds: float | None = None
    epochs: int = 0
    steps: int = 0

    def __str__(self) -> str:
        if self.seconds is not None:
            return f"{self.seconds:.1f} s after start"
        return f"epoch {self.epochs + 1}, step {self.steps + 1}"

    def reached(self, run_dir: Path) -> bool:
        evals, steps = 0, 0
        for event in events(run_dir):
            evals += event["event"] == "eval"
            steps = 0 if event["event"] == "eval" else steps + (event["event"] == "train")
        return evals > self.epochs or (evals == self.epochs and steps >= self.steps)


def wait_for(process: subprocess.Popen, run_dir: Path, moment: Moment) -> None:
    if moment.seconds is not None:
        time.sleep(moment.seconds)
        return
    while process.poll() is None and not moment.reached(run_dir):
        time.sleep(0.01)


def killed_then_resumed(overrides, run_dir, moment: Moment, how: signal.Signals) -> dict:
    process = train(overrides, run_dir)
    wait_for(process, run_dir, moment)
    finished_first = process.poll() is not None
    process.send_signal(how)
    process.wait()
    landed = phase(run_dir, finished_first)
    resumes, notes = 0, []
    while not (run_dir / "run_info.json").is_file() and resumes < 3:
        resumed = train(overrides, run_dir, resume=True)
        _, err = resumed.communicate()
        notes += [line for line in err.splitlines() if line.startswith(("note:", "error:"))]
        resumes += 1
    return {"moment": str(moment), "signal": how.name, "landed": landed,
            "finished_before_kill": finished_first, "resumes": resumes, "notes": notes,
            "score": score(run_dir) if (run_dir / "run_info.json").is_file() else None}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10, help="Random kill times per trainer.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", nargs="+", default=["loop", "trl", "ppo"])
    args = parser.parse_args()
    rng, results = random.Random(args.seed), {}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        csv, pairs = toy_data(root)
        for case in args.cases:
            reward_run = root / "trl-straight"  # the reward run PPO scores with
            if case == "ppo" and not reward_run.exists():
                train(case_overrides("trl", csv, pairs, None), reward_run).wait()
            overrides = case_overrides(case, csv, pairs, reward_run)
            started = time.perf_counter()
            straight_dir = root / f"{case}-straight"
            straight = train(overrides, straight_dir)
            if straight.wait() != 0:
                raise SystemExit(f"{case}: the uninterrupted run failed: {straight.stderr.read()}")
            seconds = time.perf_counter() - started
            expected, rows = score(root / f"{case}-straight"), []
            epochs, steps = epoch_shape(straight_dir)
            for i in range(args.kills):
                how = signal.SIGINT if i % 3 == 2 else signal.SIGKILL  # every third a Ctrl-C
                moment = (
                    Moment(seconds=rng.uniform(0.5, 4.0))  # importing, loading the model
                    if i == 0
                    else Moment(  # the second kill always before the first checkpoint
                        epochs=0 if i == 1 else rng.randrange(epochs), steps=rng.randrange(steps)
                    )
                )
                run_dir = root / f"{case}-{i}"
                row = killed_then_resumed(overrides, run_dir, moment, how)
                done = row["score"] is not None
                row["weights_gap"] = weights_gap(run_dir, straight_dir) if done else None
                row["metrics_gap"] = metrics_gap(run_dir, straight_dir) if done else None
                row["same"] = done and all(
                    row[gap] is not None and row[gap] <= SAME
                    for gap in ("weights_gap", "metrics_gap")
                )
                rows.append(row)
                print(f"{case:5} kill {i}: {how.name:7} at {moment} "
                      f"({row['landed']}) -> resumes {row['resumes']}, weights gap "
                      f"{row['weights_gap']}, metrics gap {row['metrics_gap']}: "
                      f"{'same' if row['same'] else 'DIFFERENT'}", flush=True)  # fmt: skip
            results[case] = {"uninterrupted_score": expected, "seconds": seconds, "kills": rows}
    if RESULTS.is_file():  # a run of some --cases keeps the other cases' figures
        earlier = json.loads(RESULTS.read_text())
        results = {**{k: v for k, v in earlier.items() if k in ("loop", "trl", "ppo")}, **results}
    write_measurement(RESULTS, results)
    phases = ["starting", "before 1st checkpoint", "between checkpoints", "after the end"]
    print(f"\n{'trainer':8} {'kills':>5} " + " ".join(f"{p:>21}" for p in phases)
          + f" {'completed':>9} {'same weights+metrics':>20}")  # fmt: skip
    for case, result in results.items():
        kills = result["kills"]
        landed = " ".join(f"{sum(k['landed'] == p for k in kills):>21}" for p in phases)
        done = sum(k["score"] is not None for k in kills)
        same = sum(k["same"] for k in kills)
        print(f"{case:8} {len(kills):>5} {landed} {done:>9} {same:>20}")
    print(f"written: {RESULTS}")


if __name__ == "__main__":
    main()
