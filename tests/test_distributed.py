"""Two data-parallel processes (torchrun, gloo) reach the same loss as one at the same global batch."""

import json
import os
import subprocess
import sys


def final_losses(run_dir) -> list[float]:
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [x["train_loss"] for x in lines if x["event"] == "eval"]


def test_two_processes_match_one(model_dirs, toy_csv, tmp_path):
    common = [
        f"model.name={model_dirs['llama']}",
        f"data.path={toy_csv}",
        "train.epochs=2",
        "train.batch_size=8",
        "train.lr=0.005",
        "method.name=full",
        "train.group_by_length=false",
    ]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for nproc in (1, 2):
        command = [
            sys.executable,
            "-m",
            "tunelab.cli",
            "train",
            *common,
            f"output.dir={tmp_path / f'n{nproc}'}",
            f"--nproc={nproc}",
        ]
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
    one, two = final_losses(tmp_path / "n1"), final_losses(tmp_path / "n2")
    summary = json.loads((tmp_path / "n2" / "train_summary.json").read_text())
    assert summary["processes"] == 2
    assert one[-1] < one[0]
    for a, b in zip(one, two, strict=True):
        assert abs(a - b) < 1e-3 * max(1.0, abs(a)), (one, two)


def test_an_error_in_the_workers_is_printed_once(model_dirs, toy_csv, tmp_path):
    test = tmp_path / "t.csv"
    test.write_text("text,label\nhello,zebra\n")
    command = [sys.executable, "-m", "tunelab.cli", "train", f"model.name={model_dirs['llama']}",
               f"data.path={toy_csv}", f"data.test_path={test}", f"output.dir={tmp_path / 'r'}",
               "--nproc=2"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 2, lines
    assert len(lines) == 1 and "label 'zebra'" in lines[0], lines
