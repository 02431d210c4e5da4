"""What `data_pipeline.filter` reads (DESIGN.md: "The Stack / StackOverflow shards -> score all
files"): record shards through `data_pipeline.records`, and The Stack's own Parquet files (a
`content` column plus metadata columns such as `hexsha`, `max_stars_repo_path`, `lang`).

Input is cut into read units (a record shard, or one Parquet row group) so Beam can spread a big
file over workers. Reading a unit yields records and `BadInput`s; nothing here raises on bad data,
because one corrupt file among millions must not stop a scoring run. Reasons:

- `corrupt_file`: a Parquet file or row group that does not read, a file without a `content`
  column, a record shard whose container is damaged (records read before the damage are kept);
- `malformed_record`: a record-shard line that is not a valid record;
- `undecodable_bytes`: text that is not valid UTF-8 (or holds lone surrogates);
- `empty`: text with nothing but whitespace;
- `oversize`: text longer than the size limit, in UTF-8 bytes.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from typing import Any, Iterator, Optional, Union

import tensorflow as tf

from data_pipeline import records

CORRUPT_FILE = "corrupt_file"
MALFORMED_RECORD = "malformed_record"
UNDECODABLE_BYTES = "undecodable_bytes"
EMPTY = "empty"
OVERSIZE = "oversize"
BAD_REASONS = (CORRUPT_FILE, MALFORMED_RECORD, UNDECODABLE_BYTES, EMPTY, OVERSIZE)
PARQUET = "parquet"
RECORDS = "records"
INPUT_FORMATS = ("auto", PARQUET, RECORDS)
DEFAULT_MAX_BYTES = 1_000_000  # The Stack drops files over 1 MB as well
# Columns that name a Stack file; the first present one becomes the record id.
_ID_COLUMNS = ("hexsha", "id")
_CONTENT_COLUMN = "content"
_UNDECODABLE_MESSAGE = "codec can't decode"


@dataclasses.dataclass(frozen=True)
class BadInput:
    """One input that was not scored, and why (`reason` is one of BAD_REASONS)."""

    reason: str
    location: str
    detail: str = ""
    id: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class ReadUnit:
    path: str
    format: str
    row_group: Optional[int] = None  # Parquet only


def file_format(path: str, input_format: str = "auto") -> str:
    if input_format not in INPUT_FORMATS:
        raise ValueError(f"input format {input_format!r}: expected one of {INPUT_FORMATS}")
    if input_format != "auto":
        return input_format
    if path.lower().endswith(".parquet"):
        return PARQUET
    records.shard_format(path)  # raises naming the file when it is neither
    return RECORDS


def _is_input_name(name: str, input_format: str) -> bool:
    try:
        detected = file_format(name)
    except ValueError:
        return False
    return input_format in ("auto", detected)


def expand_inputs(pattern: str, input_format: str = "auto") -> list[tuple[str, str]]:
    """(path, format) of every input file matched by a comma-separated list of files,
    directories or globs (local or gs://), sorted. A directory contributes the files of the
    chosen format (both kinds for `auto`)."""
    found: dict[str, str] = {}
    for part in (p.strip() for p in pattern.split(",")):
        if not part:
            continue
        if tf.io.gfile.isdir(part):
            matched = [f"{part.rstrip('/')}/{name}" for name in tf.io.gfile.listdir(part)
                       if not name.endswith("/") and _is_input_name(name, input_format)]
        else:
            matched = tf.io.gfile.glob(part)
        if not matched:
            raise FileNotFoundError(f"no input files match {part!r}")
        for path in matched:
            found[path] = file_format(path, input_format)
    if not found:
        raise FileNotFoundError(f"no input files match {pattern!r}")
    return sorted(found.items())


def plan_units(path: str, fmt: str) -> Iterator[Union[ReadUnit, BadInput]]:
    """The read units of one file; a Parquet file whose footer does not read is a BadInput."""
    if fmt != PARQUET:
        yield ReadUnit(path, fmt)
        return
    try:
        row_groups = _open_parquet(path).num_row_groups
    except Exception as e:  # pyarrow raises several types for damaged files
        yield BadInput(CORRUPT_FILE, path, _first_line(e))
        return
    for row_group in range(row_groups):
        yield ReadUnit(path, fmt, row_group)


def read_unit(unit: ReadUnit, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[Union[dict, BadInput]]:
    """The unit's records that pass `check_record`, and a BadInput for everything else."""
    raw = _read_parquet_row_group(unit) if unit.format == PARQUET else _read_record_shard(unit.path)
    for item in raw:
        if isinstance(item, BadInput):
            yield item
            continue
        record, location = item
        problem = check_record(record, location, max_bytes)
        yield problem if problem else record


def good_records(pattern: str, input_format: str = "auto",
                 max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[dict]:
    """The records of record shards and Parquet files alike, bad inputs skipped (the filter
    counts them; a sample drawn for annotation only needs good ones)."""
    for path, fmt in expand_inputs(pattern, input_format):
        for unit in plan_units(path, fmt):
            if isinstance(unit, ReadUnit):
                yield from (r for r in read_unit(unit, max_bytes) if not isinstance(r, BadInput))


def check_record(record: dict, location: str, max_bytes: int) -> Optional[BadInput]:
    text = record["text"]
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as e:
        return BadInput(UNDECODABLE_BYTES, location, _first_line(e), record["id"])
    if size > max_bytes:
        return BadInput(OVERSIZE, location, f"{size} bytes > {max_bytes}", record["id"])
    if not text.strip():
        return BadInput(EMPTY, location, "", record["id"])
    return None


class _CollectingReport(records.ShardReport):
    """records.ShardReport that also keeps every bad line as a BadInput, with its reason."""

    def __init__(self, path: str):
        super().__init__(path)
        self.events: list[BadInput] = []

    def note_bad(self, line: int, reason: str) -> None:
        super().note_bad(line, reason)
        kind = UNDECODABLE_BYTES if _UNDECODABLE_MESSAGE in reason else MALFORMED_RECORD
        self.events.append(BadInput(kind, f"{self.path}:{line}", reason))


def _read_record_shard(path: str) -> Iterator[Union[tuple[dict, str], BadInput]]:
    report = _CollectingReport(path)
    try:
        # Every bad line is reported here; none may stop the run.
        for record in records.read_shard(path, max_bad_fraction=1.0, report=report):
            yield from _drain(report)
            yield record, path
        yield from _drain(report)
    except Exception as e:  # gzip, TFRecord and ArrayRecord each raise their own types
        yield from _drain(report)
        yield BadInput(CORRUPT_FILE, path, _first_line(e))


def _drain(report: _CollectingReport) -> Iterator[BadInput]:
    events, report.events = report.events, []
    yield from events


def _read_parquet_row_group(unit: ReadUnit) -> Iterator[Union[tuple[dict, str], BadInput]]:
    import pyarrow as pa

    location = f"{unit.path}#row_group={unit.row_group}"
    try:
        parquet = _open_parquet(unit.path)
        first_row = sum(parquet.metadata.row_group(i).num_rows for i in range(unit.row_group))
        table = parquet.read_row_group(unit.row_group)
    except Exception as e:  # pyarrow raises several types for damaged pages
        yield BadInput(CORRUPT_FILE, location, _first_line(e))
        return
    if _CONTENT_COLUMN not in table.column_names:
        yield BadInput(CORRUPT_FILE, location, f"no {_CONTENT_COLUMN!r} column (columns: {table.column_names})")
        return
    # Read the bytes, not strings: a string column can still hold invalid UTF-8, and pyarrow
    # would fail the whole row group on the first bad value.
    contents = table.column(_CONTENT_COLUMN).cast(pa.binary()).to_pylist()
    id_column = next((c for c in _ID_COLUMNS if c in table.column_names), None)
    meta_columns = [c for c in table.column_names if c != _CONTENT_COLUMN]
    metas = table.select(meta_columns).to_pylist()
    name = os.path.basename(unit.path)
    for offset, (content, meta) in enumerate(zip(contents, metas)):
        row_location = f"{unit.path}#row={first_row + offset}"
        record_id = str(meta[id_column]) if id_column and meta[id_column] is not None \
            else f"{name}#row={first_row + offset}"
        if content is None:
            yield BadInput(EMPTY, row_location, "null content", record_id)
            continue
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError as e:
            yield BadInput(UNDECODABLE_BYTES, row_location, _first_line(e), record_id)
            continue
        yield {"id": record_id, "text": text, "source": "stack",
               "meta": {k: _json_value(v) for k, v in meta.items()}}, row_location


def _open_parquet(path: str):
    import pyarrow.fs
    import pyarrow.parquet as pq

    if "://" in path:  # gs://, s3://, hdfs://: pyarrow's own filesystems read them
        filesystem, inner = pyarrow.fs.FileSystem.from_uri(path)
        return pq.ParquetFile(filesystem.open_input_file(inner))
    return pq.ParquetFile(path)


def _json_value(value: Any) -> Any:
    if isinstance(value, (datetime.date, datetime.datetime, datetime.time)):
        return value.isoformat()
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0][:200] if text else ''}"
