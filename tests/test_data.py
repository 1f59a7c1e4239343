"""Reading every format, balancing, stratified splits and the max-length policy."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.conftest import toy_rows

from tunelab.config import DataConfig
from tunelab.data.encode import encode_rows
from tunelab.data.prepare import prepare_splits
from tunelab.data.readers import read_rows
from tunelab.models.loader import load_tokenizer

ROWS = toy_rows(20)


def write_all_formats(folder):
    (folder / "d.csv").write_text("text,label\n" + "".join(f'"{t}",{lab}\n' for t, lab in ROWS))
    (folder / "d.tsv").write_text("".join(f"{lab}\t{t}\n" for t, lab in ROWS))
    (folder / "d.jsonl").write_text(
        "".join(json.dumps({"review": t, "y": lab}) + "\n" for t, lab in ROWS)
    )
    pq.write_table(
        pa.table({"text": [t for t, _ in ROWS], "label": [lab for _, lab in ROWS]}),
        folder / "d.parquet",
    )


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("d.csv", {}),
        ("d.tsv", {"columns": ["label", "text"]}),
        ("d.jsonl", {"text_field": "review", "label_field": "y"}),
        ("d.parquet", {}),
    ],
)
def test_every_format_reads_the_same_rows(tmp_path, name, kwargs):
    write_all_formats(tmp_path)
    rows = read_rows(str(tmp_path / name), **kwargs)
    assert [(r.text, r.label) for r in rows] == ROWS


def test_packaged_spam_balances_to_747_each_and_splits_70_10_20():
    splits = prepare_splits(DataConfig(balance="undersample"), seed=123)
    sizes = {name: len(rows) for name, rows in splits.items()}
    assert sum(sizes.values()) == 2 * 747
    assert sizes == {"train": 1046, "val": 150, "test": 298}
    for _, rows in splits.items():
        spam = sum(r.label == "spam" for r in rows)
        assert abs(spam / len(rows) - 0.5) < 0.01, "stratified: every split keeps the balance"
    assert splits.labels == ["ham", "spam"]


def test_splits_are_disjoint_and_seeded():
    first = prepare_splits(DataConfig(), seed=1)
    again = prepare_splits(DataConfig(), seed=1)
    other = prepare_splits(DataConfig(), seed=2)
    ids = [{r.row for r in rows} for _, rows in first.items()]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert [r.row for r in first.test] == [r.row for r in again.test]
    assert [r.row for r in first.test] != [r.row for r in other.test]


@pytest.mark.parametrize("policy", ["drop", "truncate"])
def test_overlong_rows_are_counted(policy, model_dirs):
    tokenizer = load_tokenizer(model_dirs["llama"])
    rows = read_rows("builtin:sms_spam", columns=None)[:200]
    longest = max(len(tokenizer(r.text)["input_ids"]) for r in rows)
    over = sum(len(tokenizer(r.text)["input_ids"]) > 40 for r in rows)
    result = encode_rows(rows, tokenizer, {"ham": 0, "spam": 1}, 40, policy, "right")
    assert longest > 40 and over > 0
    if policy == "drop":
        assert result.dropped == over and len(result.examples) == 200 - over
    else:
        assert result.truncated == over and max(len(e["input_ids"]) for e in result.examples) == 40


def test_user_given_test_file_is_used_as_is(tmp_path):
    write_all_formats(tmp_path)
    config = DataConfig(path=str(tmp_path / "d.csv"), test_path=str(tmp_path / "d.parquet"))
    splits = prepare_splits(config, seed=0)
    assert len(splits.test) == 20 and len(splits.train) + len(splits.val) == 20
