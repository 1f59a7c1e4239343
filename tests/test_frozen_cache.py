"""The hidden-state cache for head/freeze: same training, frozen blocks computed once."""

import json

import pytest
from tests.helpers import train_tiny


def history(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [
        (r["train_loss"], r["val_loss"]) for r in map(json.loads, lines) if r["event"] == "eval"
    ]


@pytest.mark.parametrize("method,extra", [("freeze", ["method.k=1"]), ("head", [])])
def test_cached_training_matches_uncached_training(model_dirs, toy_csv, tmp_path, method, extra):
    # stories260K has no dropout, so caching changes nothing but the amount of compute (the
    # batches are the same random ones: by default the cached run would not group by length)
    runs = {}
    for cache in (True, False):
        run_dir = tmp_path / f"{method}_{cache}"
        summary = train_tiny(model_dirs["stories260K"], toy_csv, run_dir, method,
                             [*extra, f"train.cache_frozen={cache}", "train.group_by_length=false"])  # fmt: skip
        runs[cache] = (history(run_dir), summary["score"])
    (cached, acc_cached), (plain, acc_plain) = runs[True], runs[False]
    assert acc_cached == acc_plain
    for a, b in zip(cached, plain, strict=True):
        assert a == pytest.approx(b, abs=1e-5)


def test_the_frozen_blocks_run_once_instead_of_every_epoch(
    model_dirs, toy_csv, tmp_path, monkeypatch
):
    from transformers import AutoModelForSequenceClassification

    load = AutoModelForSequenceClassification.from_pretrained
    rows = {"count": 0}

    def load_and_count(*args, **kwargs):
        loaded = load(*args, **kwargs)  # (model, loading report): tunelab checks the report
        model = loaded[0] if isinstance(loaded, tuple) else loaded

        def count(module, inputs, output):
            rows["count"] += len(output)

        model.base_model.layers[0].register_forward_hook(count)  # the lowest, frozen block
        return loaded

    monkeypatch.setattr(AutoModelForSequenceClassification, "from_pretrained", load_and_count)
    seen = {}
    for cache in (True, False):
        rows["count"] = 0
        train_tiny(model_dirs["llama"], toy_csv, tmp_path / str(cache), "freeze",
                   ["method.k=1", "train.epochs=4", f"train.cache_frozen={cache}"])  # fmt: skip
        seen[cache] = rows["count"]
    # 160 rows: 112 train, 16 val, 32 test; test (and 4 report examples) before and after.
    evaluation = 2 * (32 + 4)
    assert seen[True] == (112 + 16) + evaluation  # the frozen block saw each row once
    assert seen[False] == 4 * (112 + 16) + evaluation  # ... against once per epoch


def test_compare_runs_share_the_states_and_train_the_same(
    model_dirs, toy_csv, tmp_path, monkeypatch
):
    """compare's trials and seeds of head/freeze read the states the first run stored: the same
    training as computing them, and a changed weight or row is another entry."""
    from tunelab.train.frozen_cache import STATES_FOLDER_VARIABLE

    shared = tmp_path / "states"
    monkeypatch.setenv(STATES_FOLDER_VARIABLE, str(shared))
    extra = ["method.k=1", "train.group_by_length=false"]
    runs = []
    for name in ("first", "second"):
        train_tiny(model_dirs["stories260K"], toy_csv, tmp_path / name, "freeze", extra)
        runs.append(history(tmp_path / name))
        assert len(list(shared.glob("*.safetensors"))) == 1  # stored once, then read
    assert runs[0] == runs[1]
    train_tiny(model_dirs["stories260K"], toy_csv, tmp_path / "fewer", "freeze",
               [*extra, "data.limit_train=50"])  # fmt: skip
    assert len(list(shared.glob("*.safetensors"))) == 2
