"""Two data-parallel processes (torchrun, gloo), on one machine or as two nodes, reach the same
loss as one at the same global batch."""

import json
import os
import socket
import subprocess
import sys

import pytest
from tests.helpers import assert_one_line_error, run_cli

ENV = dict(os.environ, PYTHONUNBUFFERED="1")


def final_losses(run_dir) -> list[float]:
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [x["train_loss"] for x in lines if x["event"] == "eval"]


COMMON = ["train.epochs=2", "train.batch_size=8", "train.lr=0.005", "method.name=full",
          "train.group_by_length=false"]  # fmt: skip


def train_command(model_dirs, toy_csv, run_dir, *flags: str) -> list[str]:
    return [sys.executable, "-m", "tunelab.cli", "train", f"model.name={model_dirs['llama']}",
            f"data.path={toy_csv}", *COMMON, f"output.dir={run_dir}", *flags]  # fmt: skip


def assert_same_losses(one_dir, many_dir, processes: int) -> None:
    one, many = final_losses(one_dir), final_losses(many_dir)
    summary = json.loads((many_dir / "train_summary.json").read_text())
    assert summary["processes"] == processes
    assert one[-1] < one[0]
    for a, b in zip(one, many, strict=True):
        assert abs(a - b) < 1e-3 * max(1.0, abs(a)), (one, many)


@pytest.fixture(scope="module")
def one_process(model_dirs, toy_csv, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("n1") / "run"
    result = subprocess.run(train_command(model_dirs, toy_csv, run_dir), capture_output=True,
                            text=True, env=ENV, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return run_dir


def test_two_processes_match_one(model_dirs, toy_csv, tmp_path, one_process):
    command = train_command(model_dirs, toy_csv, tmp_path / "n2", "--nproc=2")
    result = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert_same_losses(one_process, tmp_path / "n2", 2)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_nodes_of_one_process_match_one(model_dirs, toy_csv, tmp_path, one_process):
    """Two "machines" on localhost: each its own `tunelab train --nnodes 2 --node-rank R`,
    meeting at node 0's address (torchrun's static rendezvous), as on a real cluster."""
    master = f"127.0.0.1:{free_port()}"
    nodes = [
        subprocess.Popen(train_command(model_dirs, toy_csv, tmp_path / "nodes", "--nnodes=2",
                                       f"--node-rank={rank}", f"--master={master}"),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env={**ENV, "OMP_NUM_THREADS": "1"})  # two "machines" on 2 cores
        for rank in (0, 1)
    ]  # fmt: skip
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert_same_losses(one_process, tmp_path / "nodes", 2)


def test_a_node_rank_without_a_master_is_a_one_line_error(tmp_path):
    code, output = run_cli("train", f"output.dir={tmp_path / 'r'}", "--nnodes=2")
    assert_one_line_error(code, output, "--nnodes above 1 needs --master HOST:PORT")


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
