"""Input that used to be read wrongly without a word, or to end in a traceback: each case is
either read right (valid odd input) or one line naming file, row and field, with exit code 2."""

import json
import shutil

import pytest
from tests.helpers import assert_one_line_error, run_cli

from tunelab.data.readers import read_rows
from tunelab.errors import DataError

ROWS = "".join(f"text number {i},{'a' if i % 2 else 'b'}\n" for i in range(30))


def write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def assert_data_error(path, *expected: str, columns=None):
    with pytest.raises(DataError) as caught:
        read_rows(str(path), columns=columns)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    for part in expected:
        assert part in message, (part, message)


BAD_TABLES = {
    "two text columns": ("text,label,text\nx,a,y\n", ["row 1", "field 'text'", "twice"]),
    "unterminated quote": ('text,label\n"open quote,a\n' + ROWS, ["malformed line", "quotes"]),
    "ragged row": ("text,label\nx,a\ny,b,extra\n", ["row 2", "expected 2 columns"]),
    "labels 1 and 1.0": ("text,label\nx,1\ny,1.0\n", ["row 2", "field 'label'", "'1'"]),
    "labels Spam and spam": ("text,label\nx,Spam\ny,spam\n", ["row 2", "two classes"]),
    # issue 36: an invisible variant became a third class; the error shows what no one can see
    "spam with a zero-width space": (
        "text,label\nx,spam\ny,spam\u200b\n",
        ["row 2", "two classes", "'spam\\u200b'"],
    ),
    "spam with a NUL": ("text,label\nx,spam\ny,sp\x00am\n", ["row 2", "'sp\\x00am'"]),
}


@pytest.mark.parametrize("case", BAD_TABLES)
def test_bad_tables_are_one_line_errors(tmp_path, case):
    content, expected = BAD_TABLES[case]
    assert_data_error(write(tmp_path, "d.csv", content), *expected)


def test_columns_given_for_a_file_with_a_header(tmp_path):
    path = write(tmp_path, "d.csv", "text,label\n" + ROWS)
    assert_data_error(path, "row 1", "header", "data.columns", columns=["text", "label"])


BAD_JSONL = {
    "dict label": ({"text": "x", "label": {"a": 1}}, "field 'label'", "must be text"),
    "list text": ({"text": ["x"], "label": "a"}, "field 'text'", "must be text"),
    "float label": ({"text": "x", "label": 1.0}, "field 'label'", "float"),
    "number text": ({"text": 5, "label": "a"}, "field 'text'", "number"),
}


@pytest.mark.parametrize("case", BAD_JSONL)
def test_non_text_values_are_one_line_errors(tmp_path, case):
    record, *expected = BAD_JSONL[case]
    lines = [json.dumps({"text": "fine", "label": "a"}), json.dumps(record)]
    assert_data_error(write(tmp_path, "d.jsonl", "\n".join(lines)), "row 2", *expected)


def test_a_key_twice_in_a_jsonl_object(tmp_path):
    path = write(tmp_path, "d.jsonl", '{"text": "x", "label": "a", "text": "y"}\n')
    assert_data_error(path, "row 1", "field 'text'", "twice")


def test_line_separators_inside_jsonl_strings_and_yaml_merge_keys_are_read(tmp_path):
    """Issue 36, valid input refused: U+2028 / U+0085 raw inside a JSON string (JSON allows them)
    split the line; a YAML merge key was refused."""
    from tunelab.config.yaml_files import read_yaml

    content = '{"text": "one\u2028two", "label": "a"}\n{"text": "x\u0085yz", "label": "b"}\n'
    rows = read_rows(str(write(tmp_path, "d.jsonl", content)))
    assert [(r.text, r.label) for r in rows] == [("one\u2028two", "a"), ("x\u0085yz", "b")]
    config = write(
        tmp_path, "c.yaml", "x: &fast\n  lr: 0.01\n  epochs: 2\ntrain:\n  <<: *fast\n  epochs: 3\n"
    )
    assert read_yaml(config)["train"] == {"lr": 0.01, "epochs": 3}


def test_valid_odd_tables_keep_working(tmp_path):
    content = '\ufefftext,label\r\n"two\r\nlines, and a comma",1\r\nplain,2\r\n'
    rows = read_rows(str(write(tmp_path, "d.csv", content)))
    assert [(r.text, r.label) for r in rows] == [("two\r\nlines, and a comma", "1"), ("plain", "2")]
    jsonl = '{"text": "x", "label": 1}\n\n{"text": "y", "label": true}\n'
    assert [r.label for r in read_rows(str(write(tmp_path, "d.jsonl", jsonl)))] == ["1", "true"]


def test_a_garbage_parquet_file(tmp_path):
    assert_data_error(write(tmp_path, "d.parquet", b"not parquet at all"), "Parquet")


def train_args(model_dirs, tmp_path, *extra):
    return ["train", f"model.name={model_dirs['llama']}", f"output.dir={tmp_path / 'run'}", *extra]


@pytest.mark.parametrize("split", ["[0.7,0.3,0]", "[1.0,0,0]"])
def test_an_empty_split_is_named_before_tokenizing(model_dirs, tmp_path, split):
    data = write(tmp_path, "d.csv", "text,label\n" + ROWS)
    code, output = run_cli(*train_args(model_dirs, tmp_path, f"data.path={data}",
                                       f"data.split={split}"))  # fmt: skip
    assert_one_line_error(code, output, "split is empty", "data.split")


CONFIGS = {
    "a section twice": ("train:\n  epochs: 2\ntrain:\n  lr: 0.1\n", ["line 3", "'train'", "twice"]),
    "empty": ("", ["empty", "data.path"]),
    "comments only": ("# nothing here\n", ["empty"]),
    "not UTF-8": (b"train:\n  lr: caf\xe9\n", ["not UTF-8"]),
    "a list": ("- train\n", ["mapping"]),
}


@pytest.mark.parametrize("case", CONFIGS)
def test_bad_configs_are_one_line_errors(tmp_path, case):
    content, expected = CONFIGS[case]
    code, output = run_cli("train", write(tmp_path, "c.yaml", content))
    assert_one_line_error(code, output, "c.yaml", *expected)


@pytest.mark.parametrize(
    "override,expected",
    [
        ("train.lr=[1", "expected ',' or ']'"),
        ("train.lr=!!python/object:os.system x", "could not determine a constructor"),
        ("train.lr=@x", "cannot start any token"),
        ("train.lr={[1]: 2}", "unhashable key"),
        ("train.seed=-1", "greater than or equal to 0"),
        ("train.seed=1180591620717411303424", "less than or equal to 4294967295"),
        ("data.split_seed=-5", "greater than or equal to 0"),
    ],
)
def test_a_bad_override_is_one_line(model_dirs, tmp_path, override, expected):
    """Issue 36: YAML parse errors in overrides and seeds NumPy refuses were tracebacks."""
    code, output = run_cli("train", f"model.name={model_dirs['llama']}", override,
                           f"output.dir={tmp_path / 'run'}")  # fmt: skip
    assert_one_line_error(code, output, override.partition("=")[0], expected)
    assert not (tmp_path / "run").exists()


def test_output_dir_that_is_a_file(model_dirs, tmp_path):
    blocker = write(tmp_path, "file", "x")
    code, output = run_cli("train", f"model.name={model_dirs['llama']}", f"output.dir={blocker}")
    assert_one_line_error(code, output, "output.dir", "is a file")


def test_a_chat_role_that_is_a_list(model_dirs, tmp_path):
    record = {"messages": [{"role": ["user"], "content": "hi"},
                           {"role": "assistant", "content": "hello"}]}  # fmt: skip
    data = write(tmp_path, "chat.jsonl", json.dumps(record) + "\n")
    code, output = run_cli(*train_args(model_dirs, tmp_path, "task.name=sft", "method.name=lora",
                                       f"data.path={data}"))  # fmt: skip
    assert_one_line_error(code, output, "chat.jsonl", "row 1", "messages[0]", "role")


# --- commands on finished runs ----------------------------------------------------------------


@pytest.fixture(scope="module")
def classify_run(model_dirs, toy_csv, tmp_path_factory):
    from tests.helpers import trained_run_dir

    return trained_run_dir(tmp_path_factory, model_dirs["llama"], toy_csv, "lora", "train.epochs=1")


def test_predict_keeps_blank_lines_in_place(classify_run):
    from typer.testing import CliRunner

    from tunelab.cli import app

    result = CliRunner().invoke(app, ["predict", str(classify_run)],
                                input="great movie\n\nawful film\n")  # fmt: skip
    lines = [json.loads(x) for x in result.output.strip().splitlines()]
    assert result.exit_code == 0 and len(lines) == 3
    assert lines[1] == {"text": "", "label": None, "probs": None, "error": "empty text"}
    assert lines[0]["label"] in ("pos", "neg") and lines[2]["label"] in ("pos", "neg")
    code, output = run_cli("predict", classify_run, "")
    assert code == 0 and json.loads(output)["label"] is None


def test_predict_on_non_utf8_stdin(classify_run):
    from typer.testing import CliRunner

    from tunelab.cli import app

    result = CliRunner().invoke(app, ["predict", str(classify_run)], input=b"caf\xe9\n")
    assert_one_line_error(result.exit_code, result.output, "stdin", "UTF-8")


def damaged_copy(run_dir, tmp_path, damage):
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    damage(copy)
    return copy


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda d: shutil.rmtree(d / "adapter"), ["adapter/", "missing"]),
        (lambda d: (d / "run_info.json").write_text("{not json"), ["run_info.json", "damaged"]),
        (lambda d: (d / "run_info.json").unlink(), ["not a finished tunelab run"]),
    ],
)  # fmt: skip
@pytest.mark.parametrize("command", [["predict", "x"], ["generate", "--prompt", "hi"],
                                     ["export", "--out", "OUT"], ["report"], ["quantize"]])  # fmt: skip
def test_commands_check_the_run_files_first(classify_run, tmp_path, damage, expected, command):
    run_dir = damaged_copy(classify_run, tmp_path, damage)
    args = [a.replace("OUT", str(tmp_path / "out")) for a in command]
    code, output = run_cli(args[0], run_dir, *args[1:])
    assert_one_line_error(code, output, *expected)


@pytest.mark.parametrize("command", [["generate", "--prompt", "hi"], ["chat"]])
def test_generative_commands_name_the_run_kind(classify_run, command):
    code, output = run_cli(command[0], classify_run, *command[1:])
    assert_one_line_error(code, output, "is a classify run", "sft run")


def test_quantize_without_its_evaluation_stops_at_once(classify_run, tmp_path):
    run_dir = damaged_copy(classify_run, tmp_path, lambda d: (d / "eval_after.json").unlink())
    code, output = run_cli("quantize", run_dir)
    assert_one_line_error(code, output, "eval_after.json")


@pytest.mark.parametrize(
    "args, expected",
    [
        (["generate", "RUN", "--prompt", "hi", "--max-new-tokens", "0"], "--max-new-tokens"),
        (["generate", "RUN", "--prompt", "hi", "--batch-size", "0"], "--batch-size"),
        (["generate", "RUN", "--prompt", "hi", "--temperature", "-1"], "--temperature"),
        (["train", "--nproc", "0"], "--nproc"),
        (["nonsense"], "No such command"),
    ],
)  # fmt: skip
def test_bad_option_values_are_one_line_errors(classify_run, args, expected, monkeypatch, capsys):
    """Through `tunelab`'s own entry point (click's usage errors are caught in `main`, not in
    the commands), in this process: a `python -m tunelab.cli` start-up costs about 8 s."""
    from tunelab.cli import main

    args = [str(classify_run) if a == "RUN" else a for a in args]
    monkeypatch.setattr("sys.argv", ["tunelab", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    captured = capsys.readouterr()
    assert_one_line_error(exited.value.code, captured.out + captured.err, expected)


def test_an_unreachable_hub_id_fails_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, output = run_cli("train", "model.name=someone/some-model", f"output.dir={tmp_path / 'r'}")
    assert_one_line_error(code, output, "someone/some-model", "cannot be reached")


def test_compare_refuses_two_variants_with_one_name(tmp_path):
    experiment = write(tmp_path, "e.yaml", "base: c.yaml\noutput_dir: out\nvariants:\n"
                       "  - name: a\n  - name: a\n")  # fmt: skip
    code, output = run_cli("compare", experiment)
    assert_one_line_error(code, output, "'a'", "twice")


def test_compare_fails_when_a_variant_fails(model_dirs, toy_csv, tmp_path):
    write(tmp_path, "c.yaml", f"model:\n  name: {model_dirs['llama']}\ndata:\n"
                 f"  path: {toy_csv}\n  max_length: 32\ntrain:\n  epochs: 1\n")  # fmt: skip
    experiment = write(tmp_path, "e.yaml", f"base: c.yaml\noutput_dir: {tmp_path / 'out'}\n"
                       "variants:\n  - name: broken\n    overrides: [data.path=/nonexistent.csv]\n")  # fmt: skip
    code, output = run_cli("compare", experiment)
    assert code == 2 and "1 variant(s) failed: broken" in output
