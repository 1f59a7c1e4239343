"""pretrain on stories260K: blocks cover every token once, held-out perplexity falls."""

import pytest
from tests.lm_helpers import ROBOT_STORY, pretrain_overrides

from tunelab.config import DataConfig
from tunelab.data.lm_encode import blocks_of
from tunelab.data.lm_prepare import prepare_pretrain
from tunelab.pipeline import load_config, run


def test_pretrain_blocks_cover_every_token_once(tmp_path, stories_chat_tokenizer):
    for length in (1000, 1025, 1024):  # a short tail, a lone last token, an exact fit
        stream = list(range(length))
        blocks = blocks_of(stream, 64)
        assert [t for b in blocks for t in b["input_ids"]] == stream
        assert all(2 <= len(b["input_ids"]) <= 65 for b in blocks)
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(10):
        (folder / f"doc{i}.txt").write_text(f"Once upon a time there was a cat number {i}. " * 5)
    data = prepare_pretrain(
        DataConfig(path=str(folder), max_length=32), stories_chat_tokenizer, seed=0
    )
    for name, split in data.summary["splits"].items():
        assert sum(len(b["input_ids"]) for b in data.encoded[name]) == split["tokens"]
    assert sum(s["documents"] for s in data.summary["splits"].values()) == 10


def test_pretrain_lowers_held_out_perplexity(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(12):
        (folder / f"story{i}.txt").write_text(ROBOT_STORY.format(i=i))
    overrides = pretrain_overrides(tmp_path, folder)
    summary = run(load_config(None, overrides))
    assert summary["score_name"] == "perplexity"
    assert summary["score"] < 0.7 * summary["score_before"]


def test_a_corpus_folder_takes_files_only_and_names_a_file_that_is_not_utf8(tmp_path):
    """Issue 36: a folder named x.txt and a dangling link were tracebacks, a Latin-1 file too."""
    from tunelab.data.lm_prepare import read_documents
    from tunelab.errors import DataError

    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "a.txt").write_text("A cat sat on the mat.")
    (folder / "folder.txt").mkdir()
    (folder / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    assert read_documents(DataConfig(path=str(folder))) == ["A cat sat on the mat."]
    (folder / "b.txt").write_bytes("Café au lait.".encode("latin-1"))
    with pytest.raises(DataError) as error:
        read_documents(DataConfig(path=str(folder)))
    assert "b.txt" in str(error.value) and "not UTF-8 text (byte 0xe9" in str(error.value)
