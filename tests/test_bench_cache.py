"""Kept benchmark figures: a base is scored once for all its runs (anew when its files or its
answers change), and a benchmark stopped half-way resumes where it stopped, its time counted
whole."""

import json
import os
import shutil

import pytest
import torch
from tests.lm_helpers import STORIES, sft_overrides
from transformers import AutoModelForCausalLM, AutoTokenizer

from tunelab.bench.report import time_line
from tunelab.bench.run import BenchSettings, bench, score
from tunelab.pipeline import load_config, run


def test_a_base_is_scored_once_for_its_runs_and_anew_when_its_files_change(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path / "cache"))
    base = tmp_path / "base"
    shutil.copytree(STORIES, base)
    run(load_config(None, sft_overrides(tmp_path, "lora", f"model.name={base}", "train.lr=5e-2")))
    settings = BenchSettings(["piqa"], limit=12)
    first = bench(str(tmp_path / "run"), settings)["scores"]
    again = bench(str(tmp_path / "run"), settings)["scores"]
    assert [row["base_kept"] for row in first.values()] == [False]
    assert [row["base_kept"] for row in again.values()] == [True]
    figures = ("base", "base_stderr", "tuned", "difference", "stderr")
    assert [[row[f] for f in figures] for row in again.values()] == [
        [row[f] for f in figures] for row in first.values()
    ]
    assert "kept from earlier" in time_line({"scores": again})
    os.utime(base / "model.safetensors", ns=(1, 1))  # a replaced base: scored anew
    replaced = bench(str(tmp_path / "run"), settings)["scores"]
    assert [row["base_kept"] for row in replaced.values()] == [False]


def test_runs_from_one_base_score_its_benchmarks_before_training_once(tmp_path, monkeypatch):
    """eval.bench scored the base anew in every run (each seed and search trial of a compare:
    12 minutes of BFCL each on SmolLM2). Runs whose model before training answers as its base
    (LoRA's B = 0, full) reuse the kept figures; a model of that folder changed in memory is
    scored anew (the key holds its answers to a fixed text)."""
    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path / "cache"))
    base = tmp_path / "base"
    shutil.copytree(STORIES, base)
    bench = ["eval.bench=[piqa]", "eval.bench_limit=8", f"model.name={base}", "train.epochs=1"]
    runs = {}
    for method in ("lora", "full"):
        (tmp_path / method).mkdir()
        run(load_config(None, sft_overrides(tmp_path / method, method, *bench)))
        runs[method] = json.loads((tmp_path / method / "run" / "bench.json").read_text())
    assert [runs[m]["scores"]["piqa"]["base_kept"] for m in runs] == [False, True]
    assert runs["full"]["scores"]["piqa"]["base"] == runs["lora"]["scores"]["piqa"]["base"]
    settings = BenchSettings(["piqa"], limit=8)
    model, tokenizer = (
        AutoModelForCausalLM.from_pretrained(base),
        AutoTokenizer.from_pretrained(base),
    )
    tokenizer.pad_token = tokenizer.eos_token
    score(model, tokenizer, settings, base)
    assert score(model, tokenizer, settings, base)["piqa"].get("kept") is True
    with torch.no_grad():
        model.lm_head.weight.add_(0.5)
    assert "kept" not in score(model, tokenizer, settings, base)["piqa"]


def test_a_benchmark_stopped_half_way_resumes_where_it_stopped(tmp_path, monkeypatch):
    """A full HellaSwag is hours on 2 cores: stopped part-way (here the model fails on its third
    batch), the next `tunelab bench` asks only the requests left and scores what an unbroken run
    does; once kept, the requests file is gone."""
    from lm_eval.models.huggingface import HFLM

    base = tmp_path / "base"
    shutil.copytree(STORIES, base)
    model, tokenizer = (
        AutoModelForCausalLM.from_pretrained(base),
        AutoTokenizer.from_pretrained(base),
    )
    tokenizer.pad_token = tokenizer.eos_token
    settings = BenchSettings(["piqa"], limit=12, batch_size=2)
    model_call, calls = HFLM._model_call, []

    def counted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == stop_at:
            raise RuntimeError("stopped")
        return model_call(self, *args, **kwargs)

    monkeypatch.setattr(HFLM, "_model_call", counted)
    stop_at = 0
    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path / "unbroken"))
    unbroken = score(model, tokenizer, settings, base)["piqa"]
    every = len(calls)
    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path / "stopped"))
    calls.clear()
    stop_at = 3
    with pytest.raises(RuntimeError, match="stopped"):
        score(model, tokenizer, settings, base)
    calls.clear()
    stop_at = 0
    # the stopped piece is made to have answered its last request 100 s after it started
    (requests,) = (tmp_path / "stopped").rglob("*_rank*.db")
    (pieces,) = (tmp_path / "stopped").rglob("*_pieces.json")
    stopped_start = json.loads(pieces.read_text())[0][0]
    os.utime(requests, (stopped_start + 100, stopped_start + 100))
    resumed = score(model, tokenizer, settings, base)["piqa"]
    assert len(calls) == every - 2  # the two batches answered before the stop are not asked again
    assert (resumed["score"], resumed["outcomes"]) == (unbroken["score"], unbroken["outcomes"])
    assert 100 <= resumed["seconds"] < 100 + unbroken["seconds"] + 60  # both pieces' time
    assert not list((tmp_path / "stopped").rglob("*_pieces.json"))
    assert not list((tmp_path / "stopped").rglob("*.db"))
