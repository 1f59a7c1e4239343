"""data.streaming for sft: the rows, split, examples and counts equal the in-memory path's
(truncated and dropped rows included), a second run reopens the cache, a bad row is a one-line
error, what is not streamed is refused in one line, and a streamed sft run trains."""

import json

import pytest
from tests.helpers import assert_one_line_error, run_cli
from tests.lm_helpers import QA, sft_overrides, write_jsonl

from tunelab.config import DataConfig
from tunelab.data.lm_prepare import SftFormat, prepare_sft
from tunelab.data.streaming import files as arrow_files
from tunelab.data.streaming import sft as arrow_sft
from tunelab.data.streaming.sft import prepare_sft_arrow
from tunelab.errors import DataError
from tunelab.pipeline import load_config, run


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNELAB_DATA_CACHE", str(tmp_path / "cache"))


def record(i: int) -> dict:
    """Question/answer rows of varied length: the longest are cut or dropped by max_length."""
    question, answer = QA[i % len(QA)]
    return {"question": f"{question} (number {i})", "answer": f"{answer} " * (1 + i % 7),
            "facts": [answer.split()[-1].strip(".")], "source": "zoo" if i % 3 else None}  # fmt: skip


@pytest.mark.parametrize("given_test", [False, True])
@pytest.mark.parametrize("overlong", ["truncate", "drop"])
def test_streamed_sft_rows_equal_the_in_memory_ones(
    tmp_path, monkeypatch, stories_chat_tokenizer, given_test, overlong
):
    path = write_jsonl(tmp_path / "train.jsonl", [record(i) for i in range(90)])
    test = (
        write_jsonl(tmp_path / "test.jsonl", [record(i) for i in range(5)]) if given_test else None
    )
    monkeypatch.setattr(arrow_sft, "WRITE_BATCH", 7)  # rows carried across batches...
    monkeypatch.setattr(arrow_files, "ROUND_BYTES", 2000)  # ...and across rounds of the map
    data = DataConfig(path=str(path), test_path=str(test) if test else None, max_length=100,
                      overlong=overlong, split=[0.7, 0.15, 0.15], limit_train=60, num_proc=2)  # fmt: skip
    form = SftFormat(template="qa")
    memory = prepare_sft(data, form, stories_chat_tokenizer, seed=3)
    streamed = prepare_sft_arrow(data, form, stories_chat_tokenizer, seed=3)
    for name in ("train", "val", "test"):
        assert list(streamed.encoded[name]) == memory.encoded[name], name
        assert list(streamed.examples[name]) == memory.examples[name], name
    train = streamed.summary["splits"]["train"]
    assert streamed.summary["splits"] == memory.summary["splits"]
    assert train["truncated_overlong" if overlong == "truncate" else "dropped_overlong"] > 0
    assert {k: v for k, v in streamed.summary.items() if k != "streaming"} == memory.summary
    assert streamed.summary["streaming"]["reused"] is False
    again = prepare_sft_arrow(data, form, stories_chat_tokenizer, seed=3)
    assert again.summary["streaming"]["reused"] is True
    assert list(again.encoded["train"]) == memory.encoded["train"]


def test_a_bad_streamed_row_is_a_one_line_error_naming_row_and_field(tmp_path, stories_chat_tokenizer):  # fmt: skip
    rows = [record(i) for i in range(5)] + [{"question": "Why?", "answer": "   "}]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(DataError) as caught:
        prepare_sft_arrow(DataConfig(path=str(path)), SftFormat(template="qa"),
                          stories_chat_tokenizer, seed=0)  # fmt: skip
    message = str(caught.value)
    assert "\n" not in message and "row 6" in message and "answer" in message, message


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["task.packing=true"], "task.packing: packed rows are not streamed"),
        (["data.mix=[{path: MIX, weight: 0.5}]"], "data.mix: mixing is not streamed"),
    ],
)
def test_what_is_not_streamed_is_a_one_line_error(tmp_path, overrides, message):
    args = sft_overrides(tmp_path, "lora", "data.streaming=true")
    mix = str(tmp_path / "train.jsonl")
    code, output = run_cli("train", *args, *(o.replace("MIX", mix) for o in overrides))
    assert_one_line_error(code, output, message)


def test_a_csv_file_is_not_streamed(tmp_path, stories_chat_tokenizer):
    path = tmp_path / "train.csv"
    path.write_text("question,answer\nWhy?,Because.\n")
    with pytest.raises(Exception, match="streamed sft data is read from .jsonl"):
        prepare_sft_arrow(DataConfig(path=str(path)), SftFormat(), stories_chat_tokenizer, 0)


def test_a_streamed_sft_run_trains(tmp_path):
    overrides = sft_overrides(tmp_path, "lora", "data.streaming=true", "train.lr=0.01",
                              "train.epochs=3", "eval.generate_limit=1")  # fmt: skip
    run(load_config(None, overrides))
    run_dir = tmp_path / "run"
    before, after = (json.loads((run_dir / f"eval_{when}.json").read_text())
                     for when in ("before", "after"))  # fmt: skip
    assert after["perplexity"] < 0.8 * before["perplexity"]
    summary = json.loads((run_dir / "data_summary.json").read_text())
    assert summary["streaming"]["reused"] is False
    assert summary["splits"]["train"]["encoded_rows"] > 0
