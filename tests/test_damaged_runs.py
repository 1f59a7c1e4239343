"""Issue 36: a finished run whose files were damaged afterwards (a truncated weights file, a
corrupt adapter config, a tokenizer gone, labels that do not fit the head) is one line naming
the run in every command that loads it, never a traceback."""

import json
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers import assert_one_line_error, run_cli, trained_run_dir
from tests.lm_helpers import sft_overrides

from tunelab.artifacts import load_run
from tunelab.errors import TunelabError
from tunelab.pipeline import load_config, run
from tunelab.serve.catalog import load_catalog
from tunelab.tasks.classify.metrics import classify_with


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


# --- generated damage (issue 36's widened fuzz): any file of a finished run cut anywhere,
# emptied, overwritten or with one byte flipped (inside a tensor too: the checksums written at
# the end of the run catch it); loading gives the same predictions or one line naming the run

TEXTS = ["a good film", "a bad film", "the plot was dull"]


@pytest.fixture(scope="module")
def lora_labels(lora_classifier) -> list[tuple]:
    model, tokenizer, record = load_run(lora_classifier)
    return [(r["label"], r["probs"]) for r in classify_with(model, tokenizer, record, TEXTS)]


@given(data=st.data())
@settings(max_examples=40, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
def test_generated_damage_to_any_run_file_loads_right_or_is_one_line(
    lora_classifier, lora_labels, tmp_path, data
):
    files = sorted(
        p.relative_to(lora_classifier)
        for p in [*(lora_classifier / "adapter").rglob("*"), lora_classifier / "run_info.json"]
        if p.is_file()
    )
    target = data.draw(st.sampled_from(files), label="file")
    content = (lora_classifier / target).read_bytes()
    cut = data.draw(st.integers(0, max(len(content) - 1, 0)), label="cut at")
    damage = data.draw(st.sampled_from(["cut", "emptied", "cut + junk", "junk", "byte flipped"]),
                       label="damage")  # fmt: skip
    flipped = content[:cut] + bytes([content[cut] ^ 0x10]) + content[cut + 1 :] if content else b"x"
    damaged = {"cut": content[:cut], "emptied": b"", "cut + junk": content[:cut] + b"\x00\xff{]",
               "junk": b"\xff" * 64, "byte flipped": flipped}[damage]  # fmt: skip
    copy = tmp_path / "damaged"
    shutil.rmtree(copy, ignore_errors=True)  # the folder of the previous example
    shutil.copytree(lora_classifier, copy)
    (copy / target).write_bytes(damaged)
    try:
        model, tokenizer, record = load_run(copy)
    except TunelabError as exc:
        assert "\n" not in str(exc) and str(copy) in str(exc), str(exc)
        return
    got = [(r["label"], r["probs"]) for r in classify_with(model, tokenizer, record, TEXTS)]
    assert got == lora_labels, f"{target} {damage}: loaded and answered otherwise"


def test_a_byte_flipped_inside_a_weight_is_one_line(lora_classifier, tmp_path):
    """The file keeps its shape (safetensors' own checks pass): only the checksums written when
    the run finished tell it from the saved weights."""
    damaged = damaged_copy(lora_classifier, tmp_path, lambda d: None)
    weights = damaged / "adapter" / "adapter_model.safetensors"
    content = bytearray(weights.read_bytes())
    content[-1] ^= 0x40  # the last float's exponent: a weight many times larger
    weights.write_bytes(bytes(content))
    code, output = run_cli("predict", damaged, "a good film")
    assert_one_line_error(code, output, str(damaged), "adapter_model.safetensors", "SHA-256")
