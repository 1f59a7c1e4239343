"""Data bigger than memory: a generated text corpus (paragraphs of words drawn by their frequency
in the IMDB reviews) of growing size through pretrain's data stage with data.streaming (Arrow
files, tokenized in parallel, blocks cut as they fill), each size in a fresh process:

- peak RSS of the data stage (the largest of the process and its tokenizing workers; pages of
  memory-mapped Arrow files count as resident once touched), and the peak of their anonymous
  memory together (RssAnon sampled every 0.2 s; the workers are forked, so pages shared with
  the parent count in each of them),
- tokens/s of the data stage, against the plain `datasets` way at one size (load_dataset("text",
  sample_by="paragraph") then `.map` with the same tokenizer, batched, one process: the
  tokenization alone, no blocks),
- the time of the second start, which reopens the cached blocks.

    .venv/bin/python benchmarks/data_scale.py                       # 0.2, 0.5, 1 and 2 GB
    .venv/bin/python benchmarks/data_scale.py --sizes 0.05 --peer-size 0.05   # a quick look
    .venv/bin/python benchmarks/data_scale.py --table

Writes benchmarks/results/data_scale.json. Needs about 4x the largest size free on disk (the
corpus, and the documents, tokens and blocks files while the stage runs)."""

import argparse
import collections
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tunelab.hardware import write_measurement  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "data_scale.json"
MODEL = "smollm2-135m"
IMDB = HERE.parent.parent / "shared" / "data" / "imdb" / "imdb_train.csv"
GB = 1e9


def word_frequencies() -> tuple[np.ndarray, np.ndarray]:
    """The words and punctuation of the IMDB training reviews, with their shares: the corpus
    below draws from them, so it tokenizes as English does (bytes per token)."""
    text = IMDB.read_text(encoding="utf-8")
    counts = collections.Counter(re.findall(r"[A-Za-z']+|[.,!?]", text))
    words, freq = zip(*counts.most_common(), strict=True)
    return np.array(words), np.array(freq) / sum(freq)


def write_corpus(path: Path, size_gb: float, seed: int = 0) -> None:
    """Paragraphs of 40-400 words drawn by their frequency in real reviews until the file
    holds size_gb."""
    rng = np.random.default_rng(seed)
    words, shares = word_frequencies()
    written, target = 0, int(size_gb * GB)
    with path.open("w", encoding="utf-8") as handle:
        while written < target:
            drawn = words[rng.choice(len(words), 200_000, p=shares)]
            cuts = np.cumsum(rng.integers(40, 400, 2_000))
            paragraphs = [" ".join(part) for part in np.split(drawn, cuts) if len(part)]
            text = "\n\n".join(paragraphs) + "\n\n"
            handle.write(text)
            written += len(text)


def peak_rss_mb() -> float:
    """The largest resident set of this process or any child it waited for (the map workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def tunelab_stage(corpus: str) -> dict:
    """pretrain's data stage, streamed: the first start builds the blocks."""
    from transformers import AutoTokenizer

    from tunelab.config import DataConfig
    from tunelab.data.streaming.corpus import prepare_pretrain_arrow
    from tunelab.models.embedded import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(MODEL))
    started = time.perf_counter()
    data = prepare_pretrain_arrow(DataConfig(path=corpus, streaming=True, max_length=512), tokenizer, seed=0)  # fmt: skip
    seconds = time.perf_counter() - started
    tokens = sum(split["tokens"] for split in data.summary["splits"].values())
    return {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds,
            "documents": data.summary["documents"], "blocks": sum(len(b) for b in data.encoded.values()),
            "reused": data.summary["streaming"]["reused"]}  # fmt: skip


def peer_stage(corpus: str) -> dict:
    """What the datasets docs show: the text loader by paragraph, then a batched map."""
    from datasets import load_dataset
    from transformers import AutoTokenizer

    from tunelab.models.embedded import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(MODEL))
    started = time.perf_counter()
    cache = tempfile.mkdtemp(dir=Path(corpus).parent)
    texts = load_dataset("text", data_files=corpus, sample_by="paragraph", split="train", cache_dir=cache)  # fmt: skip
    tokens = texts.map(lambda b: tokenizer(b["text"]), batched=True, remove_columns=["text"])
    seconds = time.perf_counter() - started
    count = sum(len(ids) for batch in tokens.iter(10_000) for ids in batch["input_ids"])
    return {"seconds": seconds, "tokens": count, "tokens_per_s": count / seconds,
            "documents": len(texts)}  # fmt: skip


def anonymous_mb(pid: int) -> float:
    """RssAnon of a process: its resident memory less the pages of mapped files, which the
    kernel can drop and read again at any time."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # it ended between the listing and the read
        return 0.0
    kb = re.search(r"RssAnon:\s+(\d+)", status)
    return int(kb.group(1)) / 1024 if kb else 0.0


def family(pid: int) -> list[int]:
    """The process and its descendants (the map workers), from /proc."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *(p for child in children for p in family(int(child)))]


def run_stage(stage: str, corpus: Path, cache: Path) -> dict:
    """One stage in a fresh process: its peak RSS is its own. Its anonymous memory (all its
    processes together) is sampled every 0.2 s."""
    command = [sys.executable, __file__, "--stage", stage, "--corpus", str(corpus)]
    env = {**os.environ, "TUNELAB_DATA_CACHE": str(cache)}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True, env=env)
        peak_anonymous = 0.0
        while process.poll() is None:
            peak_anonymous = max(peak_anonymous, sum(map(anonymous_mb, family(process.pid))))
            time.sleep(0.2)
        out.seek(0), err.seek(0)
        if process.returncode:
            sys.exit(f"the {stage} stage failed:\n{err.read()[-3000:]}")
        figures = json.loads(out.read().strip().splitlines()[-1])
    return {**figures, "peak_anonymous_mb": peak_anonymous}


def measure(size_gb: float, work: Path, with_peer: bool) -> dict:
    corpus, cache = work / f"corpus_{size_gb}gb.txt", work / f"cache_{size_gb}"
    write_corpus(corpus, size_gb)
    row = {"size_gb": corpus.stat().st_size / GB}
    row["first"] = run_stage("tunelab", corpus, cache)
    row["second"] = run_stage("tunelab", corpus, cache)
    if with_peer:
        row["peer"] = run_stage("peer", corpus, cache)
    corpus.unlink()
    shutil.rmtree(cache)
    return row


def megabytes(figures: dict, key: str) -> str:
    return f"{figures[key]:,.0f}" if key in figures else "-"  # anonymous: not in older results


def print_table(report: dict) -> None:
    print(f"\npretrain data stage, streamed ({MODEL} tokenizer, blocks of 512, {report['cores']} cores)")  # fmt: skip
    print(f"{'corpus (GB)':>12} {'tokens':>14} {'first start (s)':>16} {'tokens/s':>12} "
          f"{'peak RSS (MB)':>14} {'anonymous (MB)':>15} {'second start (s)':>17}")  # fmt: skip
    for row in report["rows"]:
        first, second = row["first"], row["second"]
        print(f"{row['size_gb']:>12.2f} {first['tokens']:>14,} {first['seconds']:>16.1f} "
              f"{first['tokens_per_s']:>12,.0f} {first['peak_rss_mb']:>14,.0f} "
              f"{megabytes(first, 'peak_anonymous_mb'):>15} {second['seconds']:>17.2f}")  # fmt: skip
    for row in report["rows"]:
        if "peer" in row:
            peer, ours = row["peer"], row["first"]
            print(f"\nat {row['size_gb']:.2f} GB: plain datasets.map {peer['tokens_per_s']:,.0f} tokens/s, "
                  f"peak RSS {peer['peak_rss_mb']:,.0f} MB (anonymous {megabytes(peer, 'peak_anonymous_mb')}), "
                  f"{peer['seconds']:.0f} s (tokenization only); tunelab {ours['tokens_per_s']:,.0f} tokens/s "
                  f"({ours['tokens_per_s'] / peer['tokens_per_s']:.2f}x, blocks included)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.2, 0.5, 1.0, 2.0])
    parser.add_argument("--peer-size", type=float, default=0.5, help="The size the peer runs at.")
    parser.add_argument("--work", type=Path, help="Where the corpus and caches go (a temp dir).")
    parser.add_argument("--table", action="store_true", help="Print the last result again.")
    parser.add_argument("--out", type=Path, default=RESULTS, help="The JSON result's path.")
    parser.add_argument("--stage", choices=["tunelab", "peer"], help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        figures = (tunelab_stage if args.stage == "tunelab" else peer_stage)(args.corpus)
        print(json.dumps({**figures, "peak_rss_mb": peak_rss_mb()}))
        return
    if args.table:
        print_table(json.loads(args.out.read_text()))
        return
    work = Path(tempfile.mkdtemp(dir=args.work))
    from tunelab.models.embedded import resolve_model

    resolve_model(MODEL)  # the GGUF conversion, once, before any timing
    report = {"cores": os.cpu_count(), "rows": []}
    for size in args.sizes:  # written after every size: a cut-short sweep keeps what it ran
        report["rows"].append(measure(size, work, with_peer=size == args.peer_size))
        write_measurement(args.out, report)
    shutil.rmtree(work)
    print_table(report)
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
