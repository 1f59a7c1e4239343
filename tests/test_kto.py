"""kto, added as one task file (tasks/preference/kto.py) after the task refactor: unpaired
thumbs-up / thumbs-down answers on the real stories260K Llama."""

import json

from tests.helpers import assert_one_line_error, run_cli
from tests.test_preference import CONTRACT, assert_base_weights_untouched, overrides, pairs_file

from tunelab.pipeline import load_config, run

__all__ = ["pairs_file"]  # the module fixture, shared


def test_kto_learns_to_prefer_the_thumbs_up_answers(pairs_file, tmp_path):
    summary = run(load_config(None, overrides("kto", pairs_file, tmp_path / "kto")))
    assert summary["task"] == "kto" and summary["score_name"] == "preference_accuracy"
    assert summary["score_before"] == 0.5  # policy == reference before training: all ties
    assert summary["score"] >= 0.9 and summary["margin"] > summary["margin_before"]
    for name in CONTRACT:
        assert (tmp_path / "kto" / name).exists(), name
    assert_base_weights_untouched(tmp_path / "kto")
    data = json.loads((tmp_path / "kto" / "data_summary.json").read_text())
    assert data["splits"]["train"]["pairs"] == 70  # 70 pairs became 140 labelled answers


def test_kto_refuses_a_method_trl_cannot_train(pairs_file, tmp_path):
    code, output = run_cli("train", *overrides("kto", pairs_file, tmp_path / "k", "ia3"))
    assert_one_line_error(code, output, "method 'ia3'", "task 'kto'")
