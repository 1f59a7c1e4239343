"""Bad input: one line naming file, row and field; exit code 2; no traceback."""

import json

import pytest
from tests.helpers import assert_one_line_error, run_cli, train_tiny


@pytest.fixture
def write(tmp_path):
    def make(name: str, content: bytes | str):
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path

    return make


def train_on(path, model_dirs, tmp_path, *extra):
    return run_cli(
        "train",
        f"model.name={model_dirs['llama']}",
        f"data.path={path}",
        f"output.dir={tmp_path / 'run'}",
        *extra,
    )


GOOD = "text,label\n" + "".join(f"text number {i},{'a' if i % 2 else 'b'}\n" for i in range(30))


def test_missing_file(model_dirs, tmp_path):
    assert_one_line_error(
        *train_on(tmp_path / "nope.csv", model_dirs, tmp_path), "nope.csv", "not found"
    )


def test_missing_column(write, model_dirs, tmp_path):
    path = write("d.csv", GOOD.replace("label", "category", 1))
    assert_one_line_error(*train_on(path, model_dirs, tmp_path), "d.csv", "row 1", "field 'label'")


def test_empty_text(write, model_dirs, tmp_path):
    path = write("d.csv", GOOD + '"  ",a\n')
    assert_one_line_error(
        *train_on(path, model_dirs, tmp_path), "d.csv", "row 31", "field 'text'", "empty"
    )
    assert not (tmp_path / "run").exists()  # a run that failed before training leaves no folder


def test_label_absent_from_training(write, model_dirs, tmp_path):
    train = write("d.csv", GOOD)
    test = write("t.csv", "text,label\nhello,a\nworld,zebra\n")
    code, out = train_on(train, model_dirs, tmp_path, f"data.test_path={test}")
    assert_one_line_error(code, out, "t.csv", "row 2", "field 'label'", "zebra")


def test_non_utf8_byte(write, model_dirs, tmp_path):
    path = write("d.csv", GOOD.encode() + b"caf\xe9 au lait,a\n")
    assert_one_line_error(
        *train_on(path, model_dirs, tmp_path), "d.csv", "line 32", "UTF-8", "0xe9"
    )


def test_malformed_jsonl_line(write, model_dirs, tmp_path):
    lines = [json.dumps({"text": f"t{i}", "label": i % 2}) for i in range(20)]
    lines[6] = '{"text": "broken", "label": '
    path = write("d.jsonl", "\n".join(lines))
    assert_one_line_error(
        *train_on(path, model_dirs, tmp_path), "d.jsonl", "row 7", "malformed JSON"
    )


def test_unknown_config_key(write, tmp_path):
    config = write("c.yaml", "train:\n  epochz: 3\n")
    assert_one_line_error(
        *run_cli("train", str(config)), "c.yaml", "train.epochz", "did you mean `epochs`?"
    )
    assert_one_line_error(  # a task's key, from the registered tasks' settings
        *run_cli("train", "task.name=sft", "task.refusl=No."), "task.refusl", "`refusal`?"
    )
    code, out = run_cli("train", "method.zebra=1")
    assert_one_line_error(code, out, "method.zebra", "unknown key")
    assert "did you mean" not in out  # nothing near: no guess


def test_unknown_method_name(tmp_path):
    code, out = run_cli("train", "method.name=quantum")
    assert_one_line_error(code, out, "method", "unknown method 'quantum'", "lora")


def test_eval_with_unseen_label_names_row(model_dirs, toy_csv, tmp_path, write):
    train_tiny(model_dirs["llama"], toy_csv, tmp_path / "run", extra=["train.epochs=1"])
    bad = write("e.csv", "text,label\ngreat film,pos\nmeh,neutral\n")
    assert_one_line_error(
        *run_cli("eval", str(tmp_path / "run"), "--data", str(bad)), "e.csv", "row 2", "neutral"
    )


def test_config_schema_prints_json():
    code, out = run_cli("config", "schema")
    assert (
        code == 0
        and "lora" in json.loads(out)["$defs"]["LoraSettings"]["properties"]["name"]["const"]
    )


def test_switching_method_by_override_keeps_only_the_settings_the_new_method_has(write):
    from tunelab.pipeline import load_config

    config = write("c.yaml", "method:\n  name: freeze\n  k: 2\n")
    assert load_config(config, ["method.name=lora", "method.r=4"]).method.r == 4
    assert load_config(config, ["method.name=freeze"]).method.k == 2
    lora = write("l.yaml", "method:\n  name: lora\n  r: 16\n  target_modules: all-linear\n")
    qlora = load_config(lora, ["method.name=qlora"]).method
    assert (qlora.name, qlora.r, qlora.target_modules) == ("qlora", 16, "all-linear")
