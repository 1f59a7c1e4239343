"""data.streaming: a pretrain corpus through Arrow files gives the blocks, split and counts of
the in-memory path; the second run reopens the cached blocks; a changed file is read again;
a bad row is a one-line error; a streamed run trains."""

import json

import pytest
from tests.lm_helpers import ROBOT_STORY, pretrain_overrides, write_jsonl

from tunelab.config import DataConfig
from tunelab.data.lm_prepare import prepare_pretrain
from tunelab.data.streaming import corpus as arrow_corpus
from tunelab.data.streaming import files as arrow_files
from tunelab.data.streaming.corpus import prepare_pretrain_arrow
from tunelab.errors import DataError
from tunelab.pipeline import load_config, run


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNELAB_DATA_CACHE", str(tmp_path / "cache"))


def story(i: int) -> str:
    return f"Story {i}. The cat number {i} sat on a mat and looked at the moon. " * (1 + i % 4)


def blocks(data) -> dict[str, list[list[int]]]:
    return {name: [row["input_ids"] for row in rows] for name, rows in data.encoded.items()}


@pytest.mark.parametrize("kind", ["paragraphs", "jsonl", "folder"])
def test_streamed_blocks_equal_the_in_memory_ones(
    tmp_path, monkeypatch, kind, stories_chat_tokenizer
):
    if kind == "paragraphs":  # a tiny read chunk: paragraphs cut across chunk edges
        monkeypatch.setattr(arrow_corpus, "READ_CHUNK", 37)
        path = tmp_path / "corpus.txt"
        path.write_text("\n\n".join(story(i) for i in range(40)) + "\n\n\n")
    elif kind == "jsonl":
        path = write_jsonl(tmp_path / "corpus.jsonl", [{"text": story(i)} for i in range(40)])
    else:
        path = tmp_path / "corpus"
        path.mkdir()
        for i in range(12):
            (path / f"doc{i:02}.md").write_text(story(i))
    monkeypatch.setattr(arrow_corpus, "WRITE_BATCH", 7)  # blocks carried across batches
    monkeypatch.setattr(arrow_files, "ROUND_BYTES", 12 * len(story(0)))  # ...and rounds
    rounds, mapped_rounds = [], arrow_corpus.mapped_rounds

    def counted(*args):
        for mapped in mapped_rounds(*args):
            rounds.append(len(mapped))
            yield mapped

    monkeypatch.setattr(arrow_corpus, "mapped_rounds", counted)
    config = DataConfig(path=str(path), max_length=48, limit_train=36, num_proc=2)
    memory = prepare_pretrain(config, stories_chat_tokenizer, seed=5)
    streamed = prepare_pretrain_arrow(config, stories_chat_tokenizer, seed=5)
    assert blocks(streamed) == blocks(memory)
    assert streamed.summary["splits"] == memory.summary["splits"]
    assert streamed.summary["streaming"]["reused"] is False
    assert len(rounds) >= 4 and sum(rounds) == streamed.summary["documents"]


def test_a_second_run_reopens_the_blocks_and_a_changed_file_is_read_again(
    tmp_path, stories_chat_tokenizer
):
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(story(i) for i in range(20)))
    config = DataConfig(path=str(path), max_length=32, streaming=True)
    first = prepare_pretrain_arrow(config, stories_chat_tokenizer, seed=1)
    again = prepare_pretrain_arrow(config, stories_chat_tokenizer, seed=1)
    assert again.summary["streaming"] == {**first.summary["streaming"], "reused": True}
    assert blocks(again) == blocks(first)
    path.write_text(path.read_text() + "\n\nOne more story about a dog.")
    changed = prepare_pretrain_arrow(config, stories_chat_tokenizer, seed=1)
    assert changed.summary["streaming"]["reused"] is False
    assert changed.summary["documents"] == 21
    other_seed = prepare_pretrain_arrow(config, stories_chat_tokenizer, seed=2)
    assert other_seed.summary["streaming"]["cache"] != changed.summary["streaming"]["cache"]


def test_a_bad_row_in_a_streamed_corpus_names_its_file_row_and_field(
    tmp_path, stories_chat_tokenizer
):
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"text": story(i)}) + "\n" for i in range(5)))
    path.write_text(path.read_text() + json.dumps({"body": "no text here"}) + "\n")
    with pytest.raises(DataError, match=r"corpus.jsonl, row 6, field 'text': missing or empty"):
        prepare_pretrain_arrow(DataConfig(path=str(path)), stories_chat_tokenizer, seed=0)
    csv = tmp_path / "corpus.csv"
    csv.write_text("text\n" + "".join(f"{story(i)}\n" for i in range(5)))
    with pytest.raises(Exception, match=r"corpus.csv: data.streaming reads .txt/.md files"):
        prepare_pretrain_arrow(DataConfig(path=str(csv)), stories_chat_tokenizer, seed=0)
    assert not list((tmp_path / "cache").glob("*building*"))  # no half-built cache left


def test_a_streamed_pretrain_run_lowers_held_out_perplexity(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(ROBOT_STORY.format(i=i) for i in range(12)))
    overrides = pretrain_overrides(tmp_path, path, "data.streaming=true")
    summary = run(load_config(None, overrides))
    assert summary["score"] < 0.7 * summary["score_before"]
    data_summary = json.loads((tmp_path / "run" / "data_summary.json").read_text())
    assert data_summary["streaming"]["reused"] is False
    assert data_summary["splits"]["train"]["documents"] == 8


def test_a_corpus_over_the_threshold_streams_by_itself(tmp_path, monkeypatch):
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(story(i) for i in range(5)))
    monkeypatch.setattr(arrow_corpus, "AUTO_STREAMING_BYTES", path.stat().st_size - 1)
    assert arrow_corpus.streams(DataConfig(path=str(path)))
    monkeypatch.setattr(arrow_corpus, "AUTO_STREAMING_BYTES", path.stat().st_size)
    assert not arrow_corpus.streams(DataConfig(path=str(path)))
    # the in-memory reader names what is wrong with a missing file or reads a built-in set
    assert not arrow_corpus.streams(DataConfig(path=str(tmp_path / "missing.txt")))
    assert not arrow_corpus.streams(DataConfig())
