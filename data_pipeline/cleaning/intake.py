"""Input and output of the cleaning stages (dedup, decontaminate): every record shard matching the
input is read through `data_pipeline.records`, each valid record gets a stable key (shard index,
line), and bad input is counted instead of stopping the run. Input shard i becomes output shard i.

Bad input, each counted and reported, never fatal, never costing another record:
- malformed lines (bad JSON, invalid UTF-8, missing fields): counted per shard by records.py, with
  the first few `file:line` locations;
- `empty` records (no non-whitespace text), `huge` records (more than `max_chars` characters) and
  `undecodable` records (text that cannot be encoded as UTF-8, e.g. lone surrogates from `\\ud800`
  escapes): rejected, listed by id and location, not written.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import uuid
from typing import Any, Iterable, Iterator, Mapping, Sequence

import tensorflow as tf

from data_pipeline import records

DEFAULT_MAX_CHARS = 1_000_000
# Enough rejected ids to find the problem; the counts say how many there were.
MAX_LISTED_REJECTIONS = 100


@dataclasses.dataclass(frozen=True)
class Entry:
    """A valid record and where it came from; `key` orders records by shard, then line."""

    key: str
    location: str  # file:line
    record: dict


@dataclasses.dataclass
class ShardIntake:
    """What reading one shard found."""

    path: str
    records: int = 0
    malformed: int = 0
    malformed_locations: list[str] = dataclasses.field(default_factory=list)
    rejected: list[dict] = dataclasses.field(default_factory=list)


def record_key(shard_index: int, line: int) -> str:
    return f"{shard_index:05d}:{line:09d}"


def shard_of_key(key: str) -> int:
    return int(key.split(":", 1)[0])


def rejection_reason(text: str, max_chars: int) -> str | None:
    if not text.strip():
        return "empty"
    if len(text) > max_chars:
        return "huge"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "undecodable"
    return None


def scan_shard(path: str, shard_index: int, intake: ShardIntake,
               max_chars: int = DEFAULT_MAX_CHARS) -> Iterator[Entry]:
    """The usable records of one shard, streamed; `intake` collects what was skipped and why."""
    report = records.ShardReport(path)
    for record in records.read_shard(path, max_bad_fraction=1.0, report=report):
        # Every entry read so far, this one included, is a record, a bad line or a blank line,
        # so their sum is this record's line number (from 1, as in records.py's messages).
        line = report.records + report.bad + report.blank
        reason = rejection_reason(record["text"], max_chars)
        if reason is None:
            intake.records += 1
            yield Entry(record_key(shard_index, line), f"{path}:{line}", record)
        else:
            intake.rejected.append({"id": record["id"], "location": f"{path}:{line}",
                                    "reason": reason})
    intake.malformed = report.bad
    intake.malformed_locations = list(report.bad_locations)


def output_path(out_dir: str, shard_index: int, num_shards: int, fmt: str = "jsonl",
                partial: bool = False) -> str:
    # A partial shard keeps the format's suffix so records.py still knows how to write it, and is
    # named for this attempt: a runner may run the same shard twice at once (a retried or
    # speculative bundle, the DaskRunner recomputing a side input's inputs).
    mark = f".incomplete-{uuid.uuid4().hex}" if partial else ""
    return f"{out_dir.rstrip('/')}/records-{shard_index:05d}-of-{num_shards:05d}{mark}.{fmt}"


def write_output_shard(out_dir: str, shard_index: int, num_shards: int,
                       kept: Iterable[Mapping[str, Any]], fmt: str = "jsonl") -> int:
    """Writes under a temporary name and renames, so a rerun or a retried Beam bundle never
    leaves half a shard that looks finished."""
    partial = output_path(out_dir, shard_index, num_shards, fmt, partial=True)
    count = records.write_shard(partial, kept)
    tf.io.gfile.rename(partial, output_path(out_dir, shard_index, num_shards, fmt), overwrite=True)
    return count


def bad_input_summary(intakes: Sequence[ShardIntake]) -> dict:
    """The report's `bad_input` section, the same whichever order the shards were read in."""
    intakes = sorted(intakes, key=lambda i: i.path)
    rejected = [r for i in intakes for r in i.rejected]
    reasons: dict[str, int] = {}
    for r in rejected:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    return {"malformed_lines": sum(i.malformed for i in intakes),
            "malformed_locations": [loc for i in intakes for loc in i.malformed_locations],
            "rejected": dict(sorted(reasons.items())),
            "rejected_records": rejected[:MAX_LISTED_REJECTIONS]}


def bad_input_line(summary: dict) -> str:
    """One line for the console from a `bad_input_summary`."""
    return (f"bad input: {summary['malformed_lines']} malformed lines, rejected "
            f"{summary['rejected'] or 'none'}")


def write_json(path: str, obj: Any) -> None:
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def read_json(path: str) -> Any:
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


def add_stage_options(parser: argparse.ArgumentParser) -> None:
    """The options both cleaning stages share: bad-input limit, output format, Beam."""
    parser.add_argument("--max-chars", type=int, default=DEFAULT_MAX_CHARS,
                        help="longer records are rejected and reported")
    parser.add_argument("--format", default="jsonl", choices=["jsonl", "tfrecord", "array_record"],
                        help="container of the kept record shards")
    parser.add_argument("--beam", action="store_true",
                        help="run as a Beam pipeline; unknown options go to Beam")


def parse_stage_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None
                     ) -> tuple[argparse.Namespace, list[str] | None]:
    """(options, Beam options or None when not running on Beam)."""
    args, beam_args = parser.parse_known_args(argv)
    if beam_args and not args.beam:
        parser.error(f"unknown options {beam_args} (Beam options need --beam)")
    return args, beam_args if args.beam else None
