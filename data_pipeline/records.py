"""Record shards: the files every stage of DESIGN.md's data flow reads and writes.

A record is `{"id": str, "text": str, "source": str, "meta": {...}}`. A shard is one file in one of
three containers, chosen by the file name:

- `*.jsonl` / `*.json` (optionally `.gz`): one JSON object per line;
- `*.tfrecord*`: each record is the same JSON object, UTF-8, as one TFRecord;
- `*.array_record*` / `*.arrayrecord*`: the same, as one ArrayRecord entry.

Inputs are given as a file, a directory or a glob, local or `gs://` (tf.io.gfile); a directory
that holds numbered shards (`name-0000i-of-0000n.ext`, as `write_shards` and every stage name
them) means those, not the reports beside them. A malformed
record (bad JSON, missing or mistyped field) is counted and reported with its file and line; a
shard whose share of malformed records exceeds `max_bad_fraction` raises `MalformedShardError`.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import re
from typing import Any, Iterable, Iterator, Mapping, Sequence

import tensorflow as tf

from data_pipeline.sources import MAX_BAD_FRACTION

REQUIRED_FIELDS = {"id": str, "text": str, "source": str}
# Enough bad-line locations to find the problem; the count says how many more there were.
_MAX_REPORTED_LOCATIONS = 5


class MalformedShardError(ValueError):
    """Too many malformed records in one shard."""


class EmptySourceError(ValueError):
    """A source matched files but they hold no records."""


def shard_format(path: str) -> str:
    name = path.rsplit("/", 1)[-1].lower()
    if ".array_record" in name or ".arrayrecord" in name:
        return "arrayrecord"
    if ".tfrecord" in name:
        return "tfrecord"
    if name.endswith((".jsonl", ".json", ".jsonl.gz", ".json.gz")):
        return "jsonl"
    raise ValueError(f"{path}: unknown record shard format (expected .jsonl, .tfrecord or "
                     ".array_record in the name)")


def expand_pattern(pattern: str) -> list[str]:
    """Files matched by a comma-separated list of files, directories or globs; sorted, so every
    host sees the same order. Raises FileNotFoundError naming any part that matched nothing."""
    files: list[str] = []
    for part in (p.strip() for p in pattern.split(",")):
        if not part:
            continue
        if tf.io.gfile.isdir(part):
            names = [n for n in tf.io.gfile.listdir(part) if not n.endswith("/") and _is_shard_name(n)]
            # A stage writes `name-0000i-of-0000n.ext` shards beside JSONL reports of its own
            # (filter's scores.jsonl, dedup's clusters.jsonl): where numbered shards exist, the
            # directory's records are those, so stages chain by directory.
            numbered = [n for n in names if _NUMBERED_SHARD.search(n)]
            matched = [f"{part.rstrip('/')}/{name}" for name in numbered or names]
        else:
            matched = tf.io.gfile.glob(part)
        if not matched:
            raise FileNotFoundError(f"no record shards match {part!r}")
        files.extend(matched)
    if not files:
        raise FileNotFoundError(f"no record shards match {pattern!r}")
    return sorted(set(files))


_NUMBERED_SHARD = re.compile(r"-\d{5}-of-\d{5}\.")


def _is_shard_name(name: str) -> bool:
    try:
        shard_format(name)
    except ValueError:
        return False
    return True


def validate_record(obj: Any) -> dict:
    """The record as a dict with `meta` defaulted to {}; ValueError says what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    for field, kind in REQUIRED_FIELDS.items():
        if not isinstance(obj.get(field), kind):
            raise ValueError(f"field {field!r} missing or not a {kind.__name__}")
    meta = obj.get("meta", {})
    if not isinstance(meta, dict):
        raise ValueError("field 'meta' is not an object")
    return {"id": obj["id"], "text": obj["text"], "source": obj["source"], "meta": meta}


def _raw_entries(path: str) -> Iterator[bytes]:
    fmt = shard_format(path)
    if fmt == "jsonl":
        with tf.io.gfile.GFile(path, "rb") as f:
            yield from gzip.GzipFile(fileobj=f) if path.endswith(".gz") else f
    elif fmt == "tfrecord":
        for entry in tf.data.TFRecordDataset(path).as_numpy_iterator():
            yield entry
    else:
        from array_record.python import array_record_module

        reader = array_record_module.ArrayRecordReader(path)
        try:
            for start in range(0, reader.num_records(), 1024):
                yield from reader.read(list(range(start, min(start + 1024, reader.num_records()))))
        finally:
            reader.close()


@dataclasses.dataclass
class ShardReport:
    """What reading one shard found; `bad_locations` are `file:line: reason` strings."""

    path: str
    records: int = 0
    bad: int = 0
    blank: int = 0
    bad_locations: list[str] = dataclasses.field(default_factory=list)

    def note_bad(self, line: int, reason: str) -> None:
        self.bad += 1
        if len(self.bad_locations) < _MAX_REPORTED_LOCATIONS:
            self.bad_locations.append(f"{self.path}:{line}: {reason}")

    def check(self, max_bad_fraction: float) -> None:
        total = self.records + self.bad
        if self.bad and self.bad > max_bad_fraction * total:
            raise MalformedShardError(
                f"{self.path}: {self.bad} of {total} records malformed (more than "
                f"{max_bad_fraction:.2%}); first: " + "; ".join(self.bad_locations))
        if self.bad:
            logging.warning("%s: skipped %d malformed of %d records: %s", self.path, self.bad,
                            total, "; ".join(self.bad_locations))


def read_shard(path: str, max_bad_fraction: float = MAX_BAD_FRACTION,
               report: ShardReport | None = None) -> Iterator[dict]:
    """Valid records of one shard in file order. Lines/entries are numbered from 1."""
    report = report if report is not None else ShardReport(path)
    for line, raw in enumerate(_raw_entries(path), start=1):
        if not raw.strip():
            report.blank += 1
            continue
        try:
            record = validate_record(json.loads(raw))
        except (ValueError, UnicodeDecodeError) as e:
            report.note_bad(line, str(e).splitlines()[0][:200])
            continue
        report.records += 1
        yield record
    report.check(max_bad_fraction)


def read_records(pattern: str, max_bad_fraction: float = MAX_BAD_FRACTION) -> Iterator[dict]:
    """Valid records of every shard matching `pattern`, shard by shard."""
    for path in expand_pattern(pattern):
        yield from read_shard(path, max_bad_fraction)


def write_shard(path: str, records: Iterable[Mapping[str, Any]]) -> int:
    """Writes records (validated) in the container named by `path`; returns how many."""
    fmt = shard_format(path)
    encoded = (json.dumps(validate_record(dict(r)), ensure_ascii=False) for r in records)
    count = 0
    if fmt == "jsonl":
        with tf.io.gfile.GFile(path, "wb") as f:
            sink = gzip.GzipFile(fileobj=f, mode="wb") if path.endswith(".gz") else f
            for line in encoded:
                sink.write(line.encode("utf-8") + b"\n")
                count += 1
            if sink is not f:
                sink.close()
    elif fmt == "tfrecord":
        with tf.io.TFRecordWriter(path) as writer:
            for line in encoded:
                writer.write(line.encode("utf-8"))
                count += 1
    else:
        from array_record.python import array_record_module

        writer = array_record_module.ArrayRecordWriter(path, "group_size:1")
        for line in encoded:
            writer.write(line.encode("utf-8"))
            count += 1
        writer.close()
    return count


def write_shards(out_dir: str, records: Sequence[Mapping[str, Any]], num_shards: int,
                 prefix: str = "records", suffix: str = "jsonl") -> list[str]:
    """Splits records round-robin over `num_shards` files `prefix-0000i-of-0000n.suffix`."""
    tf.io.gfile.makedirs(out_dir)
    paths = []
    for i in range(num_shards):
        path = f"{out_dir.rstrip('/')}/{prefix}-{i:05d}-of-{num_shards:05d}.{suffix}"
        write_shard(path, records[i::num_shards])
        paths.append(path)
    return paths
