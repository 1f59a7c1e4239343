"""Read labelled text rows from CSV, TSV, JSONL or Parquet; bad input names file, row and field."""

import csv
import io
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tunelab.errors import DataError, TunelabError

BUILTIN = {"builtin:sms_spam": ("sms_spam.tsv", "tsv", ["label", "text"])}
FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".parquet": "parquet",
}
csv.field_size_limit(2**31 - 1)  # long reviews exceed csv's 128 KiB default


@dataclass(frozen=True)
class Row:
    text: str
    label: str
    row: int  # 1-based data row in its file, for error messages
    file: str


def detect_format(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    if path.suffix.lower() not in FORMATS:
        raise TunelabError(
            f"{path}: unknown file type; set data.format to csv, tsv, json, jsonl or parquet"
        )
    return FORMATS[path.suffix.lower()]


def decode_utf8(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(
            path, f"line {line} is not valid UTF-8 (byte 0x{data[exc.start]:02x})"
        ) from None


def table_records(
    path: Path, text: str, delimiter: str, columns: list[str] | None, fields: tuple[str, str]
):
    """Yield (row number, record dict) from delimited text, with or without a header row."""
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting)
    first = next(reader, None)
    if first is None:
        raise DataError(path, "the file is empty")
    if columns is None:
        missing = [f for f in fields if f not in first]
        if missing:
            raise DataError(
                path,
                f"no column '{missing[0]}' in the header (columns: {', '.join(first)}); "
                "for a file without a header set data.columns",
                row=1,
                field=missing[0],
            )
        header, rows = first, reader
    else:
        header, rows = columns, _chain(first, reader)
    for number, values in enumerate(rows, start=1):
        if not values:
            continue
        if len(values) != len(header):
            raise DataError(
                path, f"expected {len(header)} columns, found {len(values)}", row=number
            )
        yield number, dict(zip(header, values, strict=True))


def _chain(first, rest):
    yield first
    yield from rest


def jsonl_records(path: Path, text: str):
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(path, f"malformed JSON line ({exc.msg})", row=number) from None
        if not isinstance(record, dict):
            raise DataError(path, "each JSONL line must be an object", row=number)
        yield number, record


def json_records(path: Path, text: str):
    """A JSON file holding a list of objects (the Alpaca / rasbt instruction files)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"malformed JSON ({exc.msg})", row=exc.lineno) from None
    if not isinstance(data, list):
        raise DataError(path, "a .json data file must hold a list of objects")
    for number, record in enumerate(data, start=1):
        if not isinstance(record, dict):
            raise DataError(path, "each item must be an object", row=number)
        yield number, record


def parquet_records(path: Path):
    import pyarrow.parquet as pq

    yield from enumerate(pq.read_table(path).to_pylist(), start=1)


def to_row(path: Path, number: int, record: dict, text_field: str, label_field: str) -> Row:
    for field in (text_field, label_field):
        if field not in record:
            raise DataError(path, "missing", row=number, field=field)
        if record[field] is None or str(record[field]).strip() == "":
            raise DataError(path, "empty value", row=number, field=field)
    return Row(
        text=str(record[text_field]),
        label=str(record[label_field]).strip(),
        row=number,
        file=str(path),
    )


def read_records(
    source: str, fmt: str = "auto", columns: list[str] | None = None, fields: tuple[str, ...] = ()
) -> tuple[Path, list[tuple[int, dict]]]:
    """(row number, record) pairs of a data file; a table's header must hold `fields`."""
    if source in BUILTIN:
        name, fmt, columns = BUILTIN[source]
        path = Path(str(resources.files("tunelab.resources") / name))
    else:
        path = Path(source).expanduser()
    if not path.is_file():
        raise TunelabError(f"data file not found: {path}")
    kind = detect_format(path, fmt)
    if kind == "parquet":
        records = parquet_records(path)
    elif kind == "jsonl":
        records = jsonl_records(path, decode_utf8(path))
    elif kind == "json":
        records = json_records(path, decode_utf8(path))
    else:
        delimiter = "\t" if kind == "tsv" else ","
        records = table_records(path, decode_utf8(path), delimiter, columns, fields)
    return path, list(records)


def read_rows(
    source: str,
    fmt: str = "auto",
    columns: list[str] | None = None,
    text_field: str = "text",
    label_field: str = "label",
) -> list[Row]:
    """All rows of a data file, validated; `builtin:sms_spam` is the packaged SMS Spam
    Collection."""
    path, records = read_records(source, fmt, columns, (text_field, label_field))
    rows = [to_row(path, n, r, text_field, label_field) for n, r in records]
    if not rows:
        raise DataError(path, "no data rows")
    return rows
