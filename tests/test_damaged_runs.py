"""Issue 36: a finished run whose files were damaged afterwards (a truncated weights file, a
corrupt adapter config, a tokenizer gone, labels that do not fit the head) is one line naming
the run in every command that loads it, never a traceback."""

import json
import shutil

import pytest
from tests.helpers import assert_one_line_error, run_cli, trained_run_dir
from tests.lm_helpers import sft_overrides

from tunelab.errors import TunelabError
from tunelab.pipeline import load_config, run
from tunelab.serve.catalog import load_catalog


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def corrupt_adapter_config(run_dir):
    (run_dir / "adapter" / "adapter_config.json").write_text("{")


def remove_tokenizer(run_dir):
    for name in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json"):
        (run_dir / "adapter" / name).unlink(missing_ok=True)


def too_many_labels(run_dir):
    record = json.loads((run_dir / "run_info.json").read_text())
    record["labels"] = [*record["labels"], "third", "fourth"]
    (run_dir / "run_info.json").write_text(json.dumps(record))


DAMAGE = {
    "truncated adapter weights": lambda d: truncate(d / "adapter" / "adapter_model.safetensors"),
    "corrupt adapter config": corrupt_adapter_config,
    "tokenizer removed": remove_tokenizer,
    "more labels than the head": too_many_labels,
}


@pytest.fixture(scope="module")
def lora_classifier(model_dirs, toy_csv, tmp_path_factory):
    return trained_run_dir(tmp_path_factory, model_dirs["stories260K"], toy_csv, "lora")


@pytest.fixture(scope="module")
def full_classifier(model_dirs, toy_csv, tmp_path_factory):
    return trained_run_dir(tmp_path_factory, model_dirs["stories260K"], toy_csv, "full")


def damaged_copy(run_dir, tmp_path, damage):
    copy = tmp_path / "damaged"
    shutil.copytree(run_dir, copy)
    damage(copy)
    return copy


@pytest.mark.parametrize("damage", list(DAMAGE), ids=lambda d: d.replace(" ", "_"))
def test_a_damaged_run_is_one_line_in_predict_serve_and_export(lora_classifier, tmp_path, damage):
    damaged = damaged_copy(lora_classifier, tmp_path, DAMAGE[damage])
    code, output = run_cli("predict", damaged, "a good film")
    assert_one_line_error(code, output, str(damaged))
    with pytest.raises(TunelabError, match="cannot be loaded"):
        load_catalog([str(damaged)])
    code, output = run_cli("export", damaged, "--out", tmp_path / "out", "--merge")
    assert_one_line_error(code, output, str(damaged))


def test_a_truncated_full_model_is_one_line(full_classifier, tmp_path):
    damaged = damaged_copy(
        full_classifier, tmp_path, lambda d: truncate(d / "model" / "model.safetensors")
    )
    code, output = run_cli("predict", damaged, "a good film")
    assert_one_line_error(code, output, str(damaged), "cannot be loaded")


def test_a_truncated_sft_adapter_is_one_line_in_generate(tmp_path):
    run(load_config(None, sft_overrides(tmp_path, "lora", "train.epochs=1")))
    damaged = damaged_copy(
        tmp_path / "run",
        tmp_path,
        lambda d: truncate(d / "adapter" / "adapter_model.safetensors"),
    )
    code, output = run_cli("generate", damaged, "--prompt", "Hi", "--max-new-tokens", "4")
    assert_one_line_error(code, output, str(damaged), "cannot be loaded")
