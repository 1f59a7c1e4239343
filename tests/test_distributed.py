"""Two data-parallel processes (torchrun, gloo), on one machine or as two nodes, or sharded
(train.distributed: fsdp), reach the same loss as one at the same global batch."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest
import torch
from peft import PeftModel
from tests.helpers import assert_one_line_error, run_cli
from tests.lm_helpers import STORIES, sft_overrides
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from tunelab.config import TrainConfig
from tunelab.errors import TunelabError
from tunelab.runtime import deepspeed_config, validate_deepspeed
from tunelab.train.checkpoint import progress_of

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
    meeting at node 0's address (torchrun's static rendezvous), as on a real cluster. With FSDP's
    hybrid shard the weights are replicated across the nodes and sharded within each. (DDP over
    two nodes is not run as well: its rendezvous is this one, its two processes those of
    test_two_processes_match_one; each pair costs ~50 s of the suite.)"""
    master = f"127.0.0.1:{free_port()}"
    hybrid = ["train.distributed=fsdp", "train.fsdp.shard=hybrid"]
    nodes = [
        subprocess.Popen(train_command(model_dirs, toy_csv, tmp_path / "nodes", "--nnodes=2",
                                       f"--node-rank={rank}", f"--master={master}", *hybrid),
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


def wait_for_checkpoint(process: subprocess.Popen, folder, epoch: int) -> None:
    """Until checkpoints/last of `epoch` is complete (then the caller kills the run)."""
    manifest = folder / "checkpoints" / "last" / "manifest.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if manifest.is_file() and progress_of(manifest.parent).get("epoch") == epoch:
            return
        time.sleep(0.01)
    raise AssertionError(f"no epoch-{epoch} checkpoint (exit code {process.poll()})")


def kill_with_workers(process: subprocess.Popen) -> None:
    """SIGKILL to the launcher and every worker (torchrun starts each in its own session)."""
    workers = psutil.Process(process.pid).children(recursive=True)
    for each in [process, *workers]:
        each.send_signal(signal.SIGKILL)
    process.wait()
    psutil.wait_procs(workers, timeout=30)


# train.distributed: fsdp (torch's fully_shard over gloo): the same global batch, so the same losses
def test_a_killed_fsdp_run_resumes_with_two_processes_to_the_same_end_and_a_plain_model(
    model_dirs, toy_csv, tmp_path, one_process
):
    """A sharded run of one process is killed (SIGKILL) right after epoch 1's checkpoint; two
    processes resume it (the full-tensor checkpoint re-shards to any count), reach one process's
    losses, and save an ordinary model gathered from their shards."""
    run_dir = tmp_path / "killed"
    command = train_command(model_dirs, toy_csv, run_dir, "train.distributed=fsdp")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=ENV)  # fmt: skip
    wait_for_checkpoint(process, run_dir, epoch=1)
    kill_with_workers(process)
    assert progress_of(run_dir / "checkpoints" / "last")["epoch"] == 1  # killed mid-run
    assert not (run_dir / "eval_after.json").exists()
    resumed = train_command(model_dirs, toy_csv, run_dir, "--resume", "--nproc=2",
                            "train.distributed=fsdp")  # fmt: skip
    result = subprocess.run(resumed, capture_output=True, text=True, env=ENV, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Setting accelerator" not in result.stderr  # DeepSpeed's import stays quiet on CPU
    assert_same_losses(one_process, run_dir, 2)
    sharded = AutoModelForSequenceClassification.from_pretrained(run_dir / "model")
    plain = AutoModelForSequenceClassification.from_pretrained(one_process / "model")
    for (name, a), b in zip(sharded.named_parameters(), plain.parameters(), strict=True):
        assert a.dtype == torch.float32 and a.shape == b.shape, name
        assert (a - b).abs().max() < 1e-2, name  # the same training, to float rounding


def test_fsdp_lora_sft_saves_an_adapter_that_peft_loads(tmp_path):
    overrides = sft_overrides(tmp_path, "lora", "train.lr=0.01", "train.epochs=3",
                              "eval.generate_limit=1", "train.distributed=fsdp")  # fmt: skip
    command = [sys.executable, "-m", "tunelab.cli", "train", *overrides, "--nproc=2"]
    result = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    run_dir = tmp_path / "run"
    before, after = (json.loads((run_dir / f"eval_{when}.json").read_text())
                     for when in ("before", "after"))  # fmt: skip
    assert after["perplexity"] < 0.8 * before["perplexity"]
    base = AutoModelForCausalLM.from_pretrained(STORIES)
    tuned = PeftModel.from_pretrained(base, run_dir / "adapter")
    assert any(n.endswith("lora_B.default.weight") and p.abs().sum() > 0
               for n, p in tuned.named_parameters())  # fmt: skip


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["method.name=qlora"], "train.distributed=fsdp cannot shard 4-bit weights"),
        (["train.fsdp.cpu_offload=true"], "train.fsdp.cpu_offload: without a GPU"),
    ],
)
def test_fsdp_settings_it_cannot_honour_are_one_line_errors(tmp_path, overrides, message):
    args = sft_overrides(tmp_path, "lora", "train.distributed=fsdp", *overrides)
    code, output = run_cli("train", *args)
    assert_one_line_error(code, output, message)


def test_a_trainer_without_sharding_refuses_fsdp(tmp_path):
    code, output = run_cli("train", "task.name=dpo", "method.name=lora", "train.distributed=fsdp",
                           f"output.dir={tmp_path / 'r'}")  # fmt: skip
    assert_one_line_error(code, output, "train.distributed: task 'dpo' trains with the trl")


# train.distributed: deepspeed: the config is generated from the train section and passes
# DeepSpeed's own validation here; its runs need CUDA GPUs (tests/test_gpu.py, gpu_check.sh).
@pytest.mark.parametrize("stage,offload", [(2, False), (2, True), (3, True)])
def test_the_deepspeed_config_is_generated_and_passes_deepspeeds_validation(stage, offload):
    deepspeed = {"zero_stage": stage, "offload_optimizer": offload, "offload_params": stage == 3}
    config = TrainConfig(batch_size=16, grad_accum=2, max_grad_norm=0.5, precision="bf16",
                         distributed="deepspeed", deepspeed=deepspeed)  # fmt: skip
    settings = validate_deepspeed(deepspeed_config(config, processes=4))
    zero = settings["zero_optimization"]
    assert settings["train_micro_batch_size_per_gpu"] == 4  # the global batch over 4 processes
    assert settings["gradient_accumulation_steps"] == 2 and settings["gradient_clipping"] == 0.5
    assert settings["bf16"] == {"enabled": True} and zero["stage"] == stage
    assert ("offload_optimizer" in zero) == offload and ("offload_param" in zero) == (stage == 3)


def test_deepspeeds_validation_refusal_is_one_line():
    settings = deepspeed_config(TrainConfig(distributed="deepspeed"), processes=1)
    settings["zero_optimization"]["stage"] = 7
    with pytest.raises(TunelabError, match="DeepSpeed refuses the config") as caught:
        validate_deepspeed(settings)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["train.distributed=deepspeed"], "train.distributed=deepspeed runs on CUDA GPUs"),
        (["train.deepspeed.offload_params=true"], "offload_params needs zero_stage=3"),
    ],
)
def test_deepspeed_settings_it_cannot_run_are_one_line_errors(tmp_path, overrides, message):
    code, output = run_cli("train", *overrides, f"output.dir={tmp_path / 'r'}")
    assert_one_line_error(code, output, message)
