"""Tiny real models built in code, the real stories260K Llama, and a small separable dataset."""

import csv
import os
import random
import shutil
from pathlib import Path

import pytest
import torch
from tests.lm_helpers import CHAT_TEMPLATE, STORIES
from transformers import (
    AutoModel,
    AutoTokenizer,
    BertConfig,
    DistilBertConfig,
    GPT2Config,
    GPT2TokenizerFast,
    LlamaConfig,
)

ASSETS = Path(__file__).parent / "assets"


def pytest_configure(config):
    """Under pytest-xdist (`-n 2`, one worker per core) each worker and the processes it starts
    compute on one thread: torch's default of one thread per core would run 4 on 2 cores."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)
    # train.precision=auto is bf16 on some CPUs (native bf16, measured faster) and fp32 on others;
    # the suite's figures (reloads equal, micro-batches equal) are fp32's, on every CPU. The rule
    # itself is tested in test_hardware.py and test_precision.py; the processes tests start
    # inherit the pin.
    os.environ["TUNELAB_AUTO_PRECISION"] = "fp32"


# the files whose tests take longest, in that order (the durations of a CI run): `--dist
# loadfile` hands files to the two workers in collection order, so a long file collected last
# ran alone while the other worker sat idle
LONGEST_FILES = [
    "test_distributed.py",
    "test_ui_browser.py",
    "test_compare_search.py",
    "test_compare_verdicts.py",
    "test_bench.py",
    "test_preference.py",
    "test_compare.py",
    "test_embedded.py",
]


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest as found


POSITIVE = ["great", "wonderful", "excellent", "superb", "lovely", "brilliant", "amazing"]
NEGATIVE = ["awful", "terrible", "horrible", "dreadful", "boring", "poor", "nasty"]
FILLER = [
    "the",
    "movie",
    "was",
    "a",
    "film",
    "and",
    "story",
    "it",
    "had",
    "plot",
    "some",
    "actors",
    "in",
]


def tiny_configs() -> dict:
    return {
        "gpt2": (GPT2Config(n_embd=64, n_layer=2, n_head=2, n_positions=128), "gpt2-tokenizer"),
        "llama": (
            LlamaConfig(
                hidden_size=64,
                num_hidden_layers=2,
                num_attention_heads=2,
                num_key_value_heads=1,
                intermediate_size=128,
                vocab_size=512,
                max_position_embeddings=128,
            ),
            "stories260K",
        ),
        "distilbert": (
            DistilBertConfig(dim=64, n_layers=2, n_heads=2, hidden_dim=128),
            "bert-tokenizer",
        ),
        "bert": (
            BertConfig(
                hidden_size=64,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=128,
                max_position_embeddings=128,
            ),
            "bert-tokenizer",
        ),
    }


def load_asset_tokenizer(name: str):
    folder = ASSETS / name
    if name == "gpt2-tokenizer":  # no config.json there, so AutoTokenizer cannot pick the class
        return GPT2TokenizerFast.from_pretrained(folder)
    return AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory) -> dict[str, str]:
    """Folders of tiny random models (saved like any local model) plus the real stories260K."""
    root = tmp_path_factory.mktemp("models")
    dirs = {}
    for arch, (config, tokenizer_name) in tiny_configs().items():
        torch.manual_seed(0)
        folder = root / arch
        AutoModel.from_config(config).save_pretrained(folder)
        load_asset_tokenizer(tokenizer_name).save_pretrained(folder)
        dirs[arch] = str(folder)
    dirs["stories260K"] = str(ASSETS / "stories260K")
    return dirs


def toy_rows(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Sentiment-like rows whose label follows from the words: learnable in a few steps."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        words = rng.sample(FILLER, 4) + rng.sample(POSITIVE if label == "pos" else NEGATIVE, 2)
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def toy_csv(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("data") / "toy.csv", toy_rows(160))


@pytest.fixture
def copy_of(tmp_path):
    def copy(path: Path) -> Path:
        target = tmp_path / Path(path).name
        shutil.copy(path, target)
        return target

    return copy


@pytest.fixture(scope="session")
def stories_chat_tokenizer():
    """The real stories260K tokenizer with a minimal chat template (it has none)."""
    from tunelab.models.loader import load_tokenizer

    tok = load_tokenizer(STORIES)
    tok.chat_template = CHAT_TEMPLATE
    return tok


@pytest.fixture(scope="module")
def straight_run(model_dirs, toy_csv, tmp_path_factory):
    """A tiny freeze run trained 3 epochs without interruption: what resumed runs must equal."""
    from tests.helpers import train_tiny

    run_dir = tmp_path_factory.mktemp("straight") / "run"
    train_tiny(model_dirs["llama"], toy_csv, run_dir, "freeze", ["train.epochs=3"])
    return run_dir
