"""Fuzzing (hypothesis, derandomized so CI is repeatable): data files, configs, overrides and
command lines. Every input is either read right or refused with one line that names the file;
nothing ends in a traceback or in rows that break the readers' promises. 6 x 150 = 900 inputs."""

import json
import string
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tunelab.cli import app
from tunelab.config import load_config
from tunelab.data.readers import class_key, read_rows
from tunelab.errors import TunelabError

FUZZ = settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
CELL = st.text(alphabet=string.ascii_letters + ',"\r\n\t ;\ufeffé0123456789.', max_size=12)


def read_or_refuse(suffix: str, content: bytes) -> None:
    """The readers' contract on one file."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"data{suffix}"
        path.write_bytes(content)
        try:
            rows = read_rows(str(path))
        except TunelabError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc), str(exc)
            return
    assert rows, "no rows and no error"
    keys = {}
    for row in rows:
        assert isinstance(row.text, str) and row.text.strip()
        assert isinstance(row.label, str) and row.label == row.label.strip() and row.label
        assert keys.setdefault(class_key(row.label), row.label) == row.label  # one spelling


@FUZZ
@given(st.lists(st.lists(CELL, min_size=2, max_size=2) | st.lists(CELL, max_size=4), min_size=1,
                max_size=6))  # fmt: skip
def test_fuzzed_csv_files(table):
    lines = ["text,label"] + [",".join(cells) for cells in table]
    read_or_refuse(".csv", "\n".join(lines).encode())


ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "latin-1", "cp1252", "shift_jis"]
WORDS = st.text(alphabet="abcxyz éüßñ€日本ø", min_size=1, max_size=10)


@FUZZ
@given(st.lists(st.tuples(WORDS, st.sampled_from(["spam", "ham", "héllo"])), min_size=1, max_size=5),
       st.sampled_from(ENCODINGS))  # fmt: skip
def test_fuzzed_encodings(rows, encoding):
    """A file in another encoding is read right (UTF-8, with or without its BOM) or refused in
    one line: never read as mojibake rows."""
    text = "text,label\n" + "".join(f"{t},{label}\n" for t, label in rows)
    try:
        content = text.encode(encoding)
    except UnicodeEncodeError:
        return  # the encoding cannot write these words
    read_or_refuse(".csv", content)
    if encoding in ("utf-8", "utf-8-sig") or content == text.encode():
        return
    with tempfile.TemporaryDirectory() as folder:  # not UTF-8: refused, not read as other words
        path = Path(folder) / "data.csv"
        path.write_bytes(content)
        try:
            got = read_rows(str(path))
        except TunelabError:
            return
    assert [(r.text, r.label) for r in got] == [
        (t.strip(), label) for t, label in rows if t.strip()
    ]


JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip
LABEL = st.sampled_from(["a", "b", "A", " a", "1", "1.0", 1, 2, True, "", None])
RECORD = st.fixed_dictionaries(
    {"text": st.text(max_size=8), "label": LABEL}
) | st.fixed_dictionaries({}, optional={"text": JSON_VALUE, "label": JSON_VALUE})


@FUZZ
@given(st.lists(RECORD | JSON_VALUE, min_size=1, max_size=5), st.booleans())
def test_fuzzed_jsonl_files(records, cut_last_line):
    content = "\n".join(json.dumps(r) for r in records)
    if cut_last_line:
        content = content[: max(1, len(content) - 3)]  # a write stopped half-way
    read_or_refuse(".jsonl", content.encode())


SECTION_KEYS = {
    "train": ["epochs", "lr", "batch_size", "max_grad_norm", "seed", "warmup_ratio", "grad_accum"],
    "data": ["path", "split", "max_length", "columns", "limit_train"],
    "method": ["name", "r", "alpha", "k"],
    "task": ["name", "template"],
    "model": ["name"],
    "junk": ["x"],
}
VALUE = st.one_of(
    st.integers(-3, 10**7), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
    st.lists(st.floats(-1, 2), max_size=4), st.none(), st.booleans(),
)  # fmt: skip
OVERRIDE = st.sampled_from(sorted(SECTION_KEYS)).flatmap(
    lambda section: st.tuples(st.just(section), st.sampled_from(SECTION_KEYS[section]), VALUE)
)


def load_or_refuse(path: Path | None, overrides: list[str]) -> None:
    try:
        config = load_config(path, overrides)
    except TunelabError as exc:
        assert "\n" not in str(exc)
        return
    train = config.train  # an accepted config holds only trainable settings
    assert train.lr > 0 and train.epochs >= 1 and train.batch_size >= 1
    assert train.max_grad_norm is None or train.max_grad_norm > 0
    assert abs(sum(config.data.split) - 1) < 1e-6 and min(config.data.split) >= 0


@FUZZ
@given(st.lists(OVERRIDE, max_size=4))
def test_fuzzed_overrides(pairs):
    load_or_refuse(None, [f"{s}.{k}={json.dumps(v)}" for s, k, v in pairs])


@FUZZ
@given(st.dictionaries(st.sampled_from(sorted(SECTION_KEYS)),
                       st.dictionaries(st.text(max_size=8), VALUE, max_size=3), max_size=3),
       st.sampled_from(["", "dup", "bytes"]))  # fmt: skip
def test_fuzzed_config_files(sections, twist):
    text = json.dumps(sections)  # JSON is YAML
    if twist == "dup" and sections:
        text = text[:-1] + ", " + text[1:]  # every section given twice
    content = text.encode() if twist != "bytes" else text.encode()[:-1] + b"\xff"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.yaml"
        path.write_bytes(content)
        load_or_refuse(path, [])


COMMANDS = ["predict", "eval", "generate", "chat", "export", "quantize", "report", "serve",
            "compare", "doctor", "train"]  # fmt: skip
OPTION = st.sampled_from(["--max-new-tokens", "--batch-size", "--temperature", "--top-p",
                          "--format", "--quant", "--port", "--nproc", "--data", "--out",
                          "--limit-train", "--epochs", "--resume", "--int8", "--bogus",
                          # the server's flags
                          "--host", "--api-key", "--max-batch", "--batch-wait-ms", "--queue-size",
                          "--max-tokens", "--engine"])  # fmt: skip
TOKEN = st.text(alphabet=string.ascii_letters + string.digits + "-=./_ ", max_size=8)


@FUZZ
@given(st.sampled_from(COMMANDS), st.lists(st.tuples(OPTION, TOKEN), max_size=3))
def test_fuzzed_command_lines(command, options):
    """Against a run directory that does not exist: every command line ends in a usage error or
    the one-line run error, never a traceback (and never starts work)."""
    args = [command, "/nonexistent/run"]
    if command == "train":
        args = [command, "/nonexistent/config.yaml"]
    for option, value in options:
        args += [option, value]
    result = CliRunner().invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 2, (args, result.output)
    assert "Traceback" not in result.output


PAIR_TEXT = st.sampled_from(["", " ", "A kind cat.", "A mean cat.", "x" * 400, "é\u200b", None, 3])
PAIR = st.fixed_dictionaries(
    {"prompt": PAIR_TEXT, "chosen": PAIR_TEXT, "rejected": PAIR_TEXT}
) | st.fixed_dictionaries({"prompt": PAIR_TEXT, "chosen": PAIR_TEXT})


@settings(FUZZ, max_examples=30)
@given(st.lists(PAIR, min_size=1, max_size=12), st.sampled_from(["reward", "dpo", "kto"]))
def test_fuzzed_degenerate_preference_data(pairs, task):
    """Pairs that prefer nothing, empty or missing fields, prompts filling max_length: the data is
    prepared (degenerate pairs left out with a note) or refused in one line naming the file."""
    from tests.test_preference import overrides

    from tunelab.pipeline import diagnose

    good = [{"prompt": f"Tell me about cat {i}.", "chosen": "A kind cat.", "rejected": "Mean."}
            for i in range(20)]  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pairs.jsonl"
        path.write_text("".join(json.dumps(p) + "\n" for p in [*good, *pairs]))
        try:
            config = load_config(None, overrides(task, path, Path(folder) / "run", "lora",
                                                 "data.max_length=64"))  # fmt: skip
            findings, summary = diagnose(config)
        except TunelabError as exc:
            assert "\n" not in str(exc), str(exc)
            return
    fatal = [f.message for f in findings if f.severity == "fatal"]
    if fatal:  # bad rows: each one line naming the file and its row
        assert all("\n" not in m and "pairs.jsonl, row " in m for m in fatal), fatal
        return
    kept = sum(next(iter(split.values())) for split in summary["splits"].values())
    assert 20 <= kept <= 20 + len(pairs), summary  # no good pair lost, no bad one counted twice


UI_OPTION = st.sampled_from(["--workspace", "--host", "--port", "--auth", "--bogus"])
UI_VALUE = st.text(alphabet=string.ascii_letters + string.digits + ":-_ @", max_size=12)


@settings(FUZZ, max_examples=60)
@given(st.lists(st.tuples(UI_OPTION, UI_VALUE), max_size=3))
def test_fuzzed_ui_flags(options):
    """`tunelab ui`'s flags: the UI starts (uvicorn is handed the app; nothing binds here) or the
    command ends in one line with exit 2, never a traceback."""
    from unittest.mock import patch

    started = []
    with tempfile.TemporaryDirectory() as folder:
        args = ["ui", "--workspace", str(Path(folder) / "ws")]
        for option, value in options:  # a workspace stays inside the temporary folder
            args += [option, str(Path(folder) / f"w{value}") if option == "--workspace" else value]
        with patch("uvicorn.run", lambda app, **kwargs: started.append(kwargs)):
            result = CliRunner().invoke(app, args, env={"TUNELAB_UI_AUTH": ""})
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == (0 if started else 2), (args, result.output)
