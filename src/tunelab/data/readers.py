"""Read labelled text rows from CSV, TSV, JSONL or Parquet; bad input names file, row and field."""

import csv
import io
import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tunelab.data.gathering import every_row
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
    """Yield (row number, record dict) from delimited text, with or without a header row.

    The csv module is run strict: a quote left open is an error, not rows merged silently."""
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=True
    )
    rows = checked_rows(path, reader)
    first = next(rows, None)
    if first is None:
        raise DataError(path, "the file is empty")
    if columns is None:
        header = check_header(path, first, fields)
    else:
        if [c.strip().lower() for c in first] == [c.strip().lower() for c in columns]:
            raise DataError(
                path, "the first row is a header equal to data.columns; remove data.columns", row=1
            )
        header, rows = columns, _chain(first, rows)
    for number, values in enumerate(rows, start=1):
        if not values:
            continue
        if len(values) != len(header):
            raise DataError(
                path, f"expected {len(header)} columns, found {len(values)}", row=number
            )
        yield number, dict(zip(header, values, strict=True))


def checked_rows(path: Path, reader):
    """The reader's rows; a quoting error becomes a one-line error at its data row."""
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(
                path, f"malformed line {reader.line_num} ({exc}); check its quotes"
            ) from None
        yield values


def check_header(path: Path, header: list[str], fields: tuple[str, ...]) -> list[str]:
    seen = set()
    for name in header:
        if name in seen:
            raise DataError(path, "the header names this column twice", row=1, field=name)
        seen.add(name)
    missing = [f for f in fields if f not in header]
    if missing:
        raise DataError(
            path,
            f"no column '{missing[0]}' in the header (columns: {', '.join(header)}); "
            "for a file without a header set data.columns",
            row=1,
            field=missing[0],
        )
    return header


def _chain(first, rest):
    yield first
    yield from rest


class DuplicateKey(ValueError):
    pass


def unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """json's object hook: a key given twice is an error (json keeps the last silently)."""
    record = {}
    for key, value in pairs:
        if key in record:
            raise DuplicateKey(key)
        record[key] = value
    return record


def parse_json(path: Path, text: str, row: int | None):
    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except DuplicateKey as exc:
        raise DataError(
            path, "the key is given twice in one object", row=row, field=str(exc)
        ) from None
    except json.JSONDecodeError as exc:
        kind = "malformed JSON line" if row else "malformed JSON"
        raise DataError(path, f"{kind} ({exc.msg})", row=row or exc.lineno) from None


def text_lines(text: str) -> list[str]:
    """Lines split at newlines only: str.splitlines also splits at U+2028, U+0085 and form
    feeds, which JSON allows raw inside a string (such rows were refused as broken JSON)."""
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def jsonl_records(path: Path, lines: Iterable[str]):
    """(row number, record) of each non-blank line; `lines` may be an open file (streamed)."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = parse_json(path, line, number)
        if not isinstance(record, dict):
            raise DataError(path, "each JSONL line must be an object", row=number)
        yield number, record


def json_records(path: Path, text: str):
    """A JSON file holding a list of objects (the Alpaca / rasbt instruction files)."""
    data = parse_json(path, text, None)
    if not isinstance(data, list):
        raise DataError(path, "a .json data file must hold a list of objects")
    for number, record in enumerate(data, start=1):
        if not isinstance(record, dict):
            raise DataError(path, "each item must be an object", row=number)
        yield number, record


def parquet_records(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(path, f"not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    yield from enumerate(table.to_pylist(), start=1)


def text_value(path: Path, number: int, record: dict, field: str) -> str:
    """A field's text: a string (or, for labels, a whole number or a bool) that is not blank."""
    if field not in record:
        raise DataError(path, "missing", row=number, field=field)
    value = record[field]
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DataError(path, "empty value", row=number, field=field)
    if isinstance(value, bool | int) and not isinstance(value, str):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if not isinstance(value, str):
        raise DataError(
            path,
            f"must be text, not a {type(value).__name__} ({value!r:.40})",
            row=number,
            field=field,
        )
    return value


def to_row(path: Path, number: int, record: dict, text_field: str, label_field: str) -> Row:
    label = text_value(path, number, record, label_field).strip()
    text = record.get(text_field)
    if isinstance(text, int | float) and not isinstance(text, bool):
        raise DataError(path, "must be text, not a number", row=number, field=text_field)
    return Row(
        text=text_value(path, number, record, text_field),
        label=label,
        row=number,
        file=str(path),
    )


def without_invisible(text: str) -> str:
    """Text less its control and format characters (NUL, zero-width space, BOM, soft hyphen)."""
    return "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf"))


def shown(label: str) -> str:
    """A label as the error shows it: escaped where it holds characters no one can see."""
    return label if without_invisible(label) == label else ascii(label)[1:-1]


def class_key(label: str) -> str:
    """What two spellings of one class share: case, spacing, number format and invisible
    characters aside (`spam` with a zero-width space was a third class)."""
    label = without_invisible(label)
    try:
        return repr(float(label))
    except ValueError:
        return " ".join(label.split()).casefold()


def check_label_spellings(path: Path, rows: list[Row], field: str) -> None:
    """Labels that differ only in spelling (1 and 1.0, Spam and spam) would be two classes."""
    first: dict[str, Row] = {}
    for row in rows:
        seen = first.setdefault(class_key(row.label), row)
        if seen.label != row.label:
            raise DataError(
                path,
                f"label '{shown(row.label)}' and label '{shown(seen.label)}' (row {seen.row}) "
                "would be two classes; write one class one way",
                row=row.row,
                field=field,
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
        records = jsonl_records(path, text_lines(decode_utf8(path)))
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
    rows = every_row(records, lambda n, r: to_row(path, n, r, text_field, label_field))
    if not rows:
        raise DataError(path, "no data rows")
    check_label_spellings(path, rows, label_field)
    return rows
