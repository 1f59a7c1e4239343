"""Long work shows progress where its output goes: a log file or a pipe gets plain lines (rich's
transient bars wrote nothing there: a `tunelab train > log` scoring BFCL for half an hour showed
an empty log)."""

import subprocess
import sys

from tests.lm_helpers import STORIES, sft_overrides
from transformers import AutoModelForCausalLM, AutoTokenizer

from tunelab import progress
from tunelab.generation import generate


def test_generation_writes_plain_progress_lines_off_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)  # a line at every update
    model = AutoModelForCausalLM.from_pretrained(STORIES)
    tokenizer = AutoTokenizer.from_pretrained(STORIES)
    tokenizer.pad_token = tokenizer.eos_token  # as tunelab's loader sets it
    prompts = ["Once upon a time", "The dog", "A girl saw"]
    answers = generate(model, tokenizer, prompts, max_new_tokens=4, batch_size=1, description="ask")
    assert len(answers) == 3
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith("ask: ") for line in lines), lines
    assert lines[-1].startswith("ask: 3/3 (100%), 0m") and lines.count(lines[-1]) == 1


def test_a_train_written_to_a_pipe_logs_each_epochs_end(tmp_path):
    command = [sys.executable, "-m", "tunelab.cli", "train"]
    command += sft_overrides(tmp_path, "lora", "train.epochs=2", "eval.generate_limit=2")
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    for epoch in (1, 2):
        done = [line for line in lines if line.startswith(f"epoch {epoch}/2: ")]
        assert len(done) == 1 and "(100%)" in done[0] and ", loss " in done[0], lines
    # the evaluation's bar (transient) took under 30 s: a log keeps long work only
    assert not any(line.startswith("answering") for line in lines), lines
