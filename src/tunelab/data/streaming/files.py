"""What the streamed data paths (pretrain blocks, sft rows) share: a cache folder built once
per key, `datasets.map` in rounds on fresh memory maps, and Arrow rows read as the trainers'
list of dicts.

Rounds: a split is a seeded shuffle of the rows, so its rows lie all over the source file. Read
through a memory map, each row faults in a neighbourhood of pages (the kernel's fault-around),
which then count in the process's resident memory: the map workers' resident memory grew with
the corpus (2.45 GB at 2 GB of text, 0.5 GB of it file pages at 0.5 GB). So each round gathers
about ROUND_BYTES of rows with plain reads, a record batch at a time, and maps them from memory;
the round's output is deleted once the caller has consumed it."""

import bisect
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pyarrow as pa
from datasets import Dataset
from datasets.table import InMemoryTable

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


def gather_rows(source: Path, indices: Sequence[int]) -> Dataset:
    """The rows `indices` of the Arrow file `source`, in that order, read with plain reads (no
    memory map) one record batch at a time: one pass over the file."""
    order = sorted(range(len(indices)), key=indices.__getitem__)
    wanted = [int(indices[i]) for i in order]
    parts, first, at = [], 0, 0
    with pa.OSFile(str(source)) as handle:
        for batch in pa.ipc.open_stream(handle):
            end = first + batch.num_rows
            stop = bisect.bisect_left(wanted, end, lo=at)
            if stop > at:
                parts.append(batch.take(pa.array([w - first for w in wanted[at:stop]])))
            first, at = end, stop
            if at == len(wanted):
                break
    table = pa.Table.from_batches(parts)
    restore = [0] * len(order)  # sorted position -> requested position
    for sorted_at, requested in enumerate(order):
        restore[requested] = sorted_at
    return Dataset(InMemoryTable(table.take(pa.array(restore, type=pa.int64()))))


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
        rows = gather_rows(source, indices[start : start + per_round])
        workers = min(num_proc, len(rows))
        mapped = rows.map(
            function,
            batched=True,
            num_proc=workers if workers > 1 else None,
            remove_columns=rows.column_names,
            cache_file_name=str(work / f"round_{start}.arrow"),
            desc=f"tokenizing rows {start:,}-{start + len(rows):,} of {len(indices):,}",
        )
        yield mapped
        files = [Path(f["filename"]) for f in mapped.cache_files]
        del rows, mapped  # the round's rows and its memory map go here
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
