"""What the streamed data paths (pretrain blocks, sft rows) share: a cache folder built once
per key, `datasets.map` in rounds on fresh memory maps, and Arrow rows read as the trainers'
list of dicts.

Rounds: the pages of a mapped file that a process touched count in its resident memory until
the map closes, so one map over a whole shuffled split made resident memory grow with the corpus
(2.45 GB at 2 GB of text). Each round maps about ROUND_BYTES of text on a fresh memory map that
is closed, and its output deleted, once the round is consumed."""

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from datasets import Dataset

WRITE_BATCH = 1000  # rows per Arrow record batch
ROUND_BYTES = 64 << 20  # text mapped per round (module docstring)
SUMMARY = "summary.json"


def cache_root() -> Path:
    default = Path.home() / ".cache" / "tunelab" / "data"
    return Path(os.environ.get("TUNELAB_DATA_CACHE", default))


def cached_build(key: str, build: Callable[[Path], None]) -> tuple[Path, bool]:
    """The cache folder of `key`, built by `build(folder)` (which writes SUMMARY last) unless a
    complete one exists; a build cut short leaves nothing half-built behind. Returns the folder
    and whether it was reused."""
    folder = cache_root() / key
    if (folder / SUMMARY).is_file():
        return folder, True
    building = folder.with_name(f"{folder.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    try:
        build(building)
        if (folder / SUMMARY).is_file():  # another run built the same meanwhile
            shutil.rmtree(building)
        else:
            shutil.rmtree(folder, ignore_errors=True)  # a build cut short
            building.rename(folder)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return folder, False


def rows_per_round(rows: int, text_bytes: int) -> int:
    return max(1, rows * ROUND_BYTES // max(1, text_bytes))


def mapped_rounds(
    source: Path,
    indices: Sequence[int],
    per_round: int,
    function: Callable[[dict], dict],
    num_proc: int,
    work: Path,
) -> Iterator[Dataset]:
    """`function` (a batched map) over the rows `indices` of the Arrow file `source`, in that
    order, `per_round` rows at a time, each round in `num_proc` processes (datasets' map). A
    round's output is deleted once the caller asks for the next."""
    for start in range(0, len(indices), per_round):
        part = list(indices[start : start + per_round])
        workers = min(num_proc, len(part))
        rows = Dataset.from_file(str(source))
        mapped = rows.select(part).map(
            function,
            batched=True,
            num_proc=workers if workers > 1 else None,
            remove_columns=rows.column_names,
            cache_file_name=str(work / f"round_{start}.arrow"),
            desc=f"tokenizing rows {start:,}-{start + len(part):,} of {len(indices):,}",
        )
        yield mapped
        files = [Path(f["filename"]) for f in mapped.cache_files]
        del rows, mapped  # their memory maps close here, and their pages leave this process
        for file in files:
            file.unlink()


class ArrowRows(Sequence):
    """Memory-mapped rows as the trainers' list of dicts: a row is read when indexed. `shape`
    turns a stored row into the row the trainer sees (pretrain blocks add their labels)."""

    def __init__(self, path: Path, shape: Callable[[dict], dict] = dict):
        self.dataset, self.shape = Dataset.from_file(str(path)), shape

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self.shape(self.dataset[index])

    def __iter__(self) -> Iterator[dict]:
        return map(self.shape, self.dataset)
