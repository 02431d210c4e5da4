"""`python -m data_pipeline.filter`: DESIGN.md's "score all files (classifier)" -> "keep top
files" step.

Reads record shards and The Stack's Parquet files (see `data_pipeline.curation.filter_inputs`),
scores every file with the educational-value classifier (`--classifier`, default: the one shipped
in the package) over the embedder it was trained on, and writes into `--out`:

- `kept-0000i-of-0000n.jsonl`: the records scoring at or above the classifier's threshold, each
  in the shard its id hashes to, sorted by id (so both paths below write identical files);
- `scores.jsonl`: `{"id", "score"}` for every scored file, and `{"id", "score": null, "bad":
  reason}` for files that could not be scored;
- `report.json` (counts, kept fraction, score histogram, bad inputs by reason with examples) and
  `histogram.png`.

Two paths give the same kept set: Apache Beam (`data_pipeline.curation.filter_beam`; used whenever
`--runner` or other Beam options are given, and for inputs over `--single-process-max-mb`) and a
single process (small inputs without `--runner`, or `filter_records()`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from typing import Iterable, Optional, Sequence

import tensorflow as tf

from data_pipeline import records
from data_pipeline.curation import filter_inputs
from data_pipeline.curation.classifier import load_classifier
from data_pipeline.curation.filter_inputs import BadInput
from data_pipeline.curation.filter_report import FilterReport
from data_pipeline.curation.scoring import Scorer

SCORES_FILE = "scores.jsonl"
KEPT_PREFIX = "kept"
DEFAULT_NUM_SHARDS = 4
DEFAULT_BATCH_SIZE = 64
DEFAULT_EMBED_BATCH_SIZE = 32
SINGLE_PROCESS_MAX_MB = 64.0


def kept_shard_index(record_id: str, num_shards: int) -> int:
    """A stable shard for an id (Python's hash() is salted per process, so not that)."""
    return int.from_bytes(hashlib.sha256(record_id.encode("utf-8")).digest()[:8], "big") % num_shards


def kept_shard_path(out_dir: str, index: int, num_shards: int) -> str:
    return f"{out_dir.rstrip('/')}/{KEPT_PREFIX}-{index:05d}-of-{num_shards:05d}.jsonl"


def write_kept_shard(out_dir: str, index: int, num_shards: int, kept: Iterable[dict]) -> int:
    return records.write_shard(kept_shard_path(out_dir, index, num_shards), sorted(kept, key=lambda r: r["id"]))


def score_line(record_id: str, score: Optional[float], bad_reason: Optional[str] = None) -> dict:
    line = {"id": record_id, "score": score}
    if bad_reason:
        line["bad"] = bad_reason
    return line


def write_scores(out_dir: str, lines: Iterable[dict]) -> int:
    """`scores.jsonl`, sorted by id, so every path and runner writes the same bytes."""
    lines = sorted(lines, key=lambda line: line["id"])
    with tf.io.gfile.GFile(f"{out_dir.rstrip('/')}/{SCORES_FILE}", "w") as f:
        f.write("".join(json.dumps(line, sort_keys=True) + "\n" for line in lines))
    return len(lines)


def _report_context(classifier_dir: Optional[str], embedder_name: str, input_pattern: str,
                    path: str) -> dict:
    return {"classifier": classifier_dir or "shipped default", "embedder": embedder_name,
            "input": input_pattern, "path": path}


def filter_records(input_pattern: str, out_dir: str, *, classifier_dir: Optional[str] = None,
                   embedder_spec: Optional[str] = None, input_format: str = "auto",
                   max_bytes: int = filter_inputs.DEFAULT_MAX_BYTES, num_shards: int = DEFAULT_NUM_SHARDS,
                   batch_size: int = DEFAULT_BATCH_SIZE,
                   embed_batch_size: int = DEFAULT_EMBED_BATCH_SIZE, scorer: Optional[Scorer] = None,
                   threshold: Optional[float] = None) -> dict:
    """The single-process path: scores everything in this process and returns the report.
    `scorer` replaces `classifier_dir` / `embedder_spec` / `threshold` with models already loaded
    (its time counters then show where this run spent its time); `threshold` replaces the
    classifier's."""
    files = filter_inputs.expand_inputs(input_pattern, input_format)
    scorer = scorer or Scorer(classifier_dir, embedder_spec, threshold)
    report = FilterReport()
    kept: list[list[dict]] = [[] for _ in range(num_shards)]
    lines: list[dict] = []
    pending: list[dict] = []

    def score_pending() -> None:
        scores = scorer.score([r["text"] for r in pending], batch_size=embed_batch_size)
        for record, score in zip(pending, scores):
            lines.append(score_line(record["id"], float(score)))
            report.add_score(float(score), score >= scorer.threshold)
            if score >= scorer.threshold:
                kept[kept_shard_index(record["id"], num_shards)].append(record)
        pending.clear()

    def note_bad(bad: BadInput) -> None:
        report.add_bad(bad)
        if bad.id is not None:
            lines.append(score_line(bad.id, None, bad.reason))

    for path, fmt in files:
        for unit in filter_inputs.plan_units(path, fmt):
            if isinstance(unit, BadInput):
                note_bad(unit)
                continue
            for item in filter_inputs.read_unit(unit, max_bytes):
                if isinstance(item, BadInput):
                    note_bad(item)
                    continue
                pending.append(item)
                if len(pending) == batch_size:
                    score_pending()
    if pending:
        score_pending()

    tf.io.gfile.makedirs(out_dir)
    for index, shard in enumerate(kept):
        write_kept_shard(out_dir, index, num_shards, shard)
    write_scores(out_dir, lines)
    context = _report_context(classifier_dir, scorer.embedder.name, input_pattern, "single-process")
    result = report.write(out_dir, scorer.threshold, **context)
    logging.info("embedding %.1f s, classifier %.1f s", scorer.embed_seconds, scorer.classify_seconds)
    return result


def filter_with_beam(input_pattern: str, out_dir: str, beam_args: Sequence[str] = (), *,
                     classifier_dir: Optional[str] = None, embedder_spec: Optional[str] = None,
                     input_format: str = "auto", max_bytes: int = filter_inputs.DEFAULT_MAX_BYTES,
                     num_shards: int = DEFAULT_NUM_SHARDS, batch_size: int = DEFAULT_BATCH_SIZE,
                     embed_batch_size: int = DEFAULT_EMBED_BATCH_SIZE, threshold: Optional[float] = None) -> dict:
    """The Beam path; `beam_args` are standard pipeline options (`--runner=DataflowRunner ...`).
    Returns the report."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from data_pipeline.curation import filter_beam
    from data_pipeline.embedder import load_embedder

    classifier = load_classifier(classifier_dir)
    # Fail on the launcher, not on every worker: the embedder must be the classifier's.
    embedder = load_embedder(embedder_spec or classifier.metadata["embedder"]["spec"])
    classifier.check_embedder(embedder)
    threshold = classifier.threshold if threshold is None else threshold
    files = filter_inputs.expand_inputs(input_pattern, input_format)
    tf.io.gfile.makedirs(out_dir)
    with beam.Pipeline(options=PipelineOptions(list(beam_args))) as pipeline:
        filter_beam.build(pipeline, files, out_dir, classifier_dir=classifier_dir, embedder_spec=embedder_spec,
                          threshold=threshold, max_bytes=max_bytes, num_shards=num_shards,
                          batch_size=batch_size, embed_batch_size=embed_batch_size,
                          report_context=_report_context(classifier_dir, embedder.name, input_pattern, "beam"))
    with tf.io.gfile.GFile(f"{out_dir.rstrip('/')}/report.json") as f:
        return json.load(f)


def input_megabytes(input_pattern: str, input_format: str) -> float:
    return sum(tf.io.gfile.stat(path).length
               for path, _ in filter_inputs.expand_inputs(input_pattern, input_format)) / 2**20


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m data_pipeline.filter",
        description="Score files for educational value and keep those at or above the classifier's "
                    "threshold. Reads IN: record shards (.jsonl[.gz], .tfrecord, .array_record) and "
                    "The Stack's Parquet files (a 'content' column plus metadata), as a file, "
                    "directory or glob, local or gs://. Writes into OUT: kept-*-of-*.jsonl (kept "
                    "records), scores.jsonl (id, score for every file; score null and 'bad' for "
                    "files that could not be scored), report.json and histogram.png. Unknown "
                    "options are Apache Beam pipeline options (e.g. --runner=DataflowRunner "
                    "--project=... --region=... --temp_location=gs://...); without --runner, "
                    "small inputs run in this process.",
        epilog="Bad inputs (corrupt Parquet or shards, malformed records, undecodable bytes, empty "
               "or over-size files) are counted in the report and never stop the run.")
    parser.add_argument("--input", required=True, help="record shards and/or Parquet files")
    parser.add_argument("--out", required=True, help="output directory (local or gs://)")
    parser.add_argument("--classifier", default=None,
                        help="classifier directory from `data_pipeline.classify train` (default: the "
                             "one shipped in the package)")
    parser.add_argument("--embedder", default=None,
                        help="embedder spec; default: the one the classifier was trained on (another "
                             "model is refused)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="keep files scoring at or above this (default: the classifier's threshold)")
    parser.add_argument("--input-format", choices=filter_inputs.INPUT_FORMATS, default="auto",
                        help="auto: by extension (.parquet, else record shards)")
    parser.add_argument("--max-bytes", type=int, default=filter_inputs.DEFAULT_MAX_BYTES,
                        help="files larger than this (UTF-8 bytes) are reported as oversize")
    parser.add_argument("--num-shards", type=int, default=DEFAULT_NUM_SHARDS, help="kept record shards")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="files scored per batch")
    parser.add_argument("--single-process-max-mb", type=float, default=SINGLE_PROCESS_MAX_MB,
                        help="without --runner, inputs up to this size run in this process")
    args, beam_args = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    options = dict(classifier_dir=args.classifier, embedder_spec=args.embedder, input_format=args.input_format,
                   max_bytes=args.max_bytes, num_shards=args.num_shards, batch_size=args.batch_size,
                   threshold=args.threshold)
    try:
        if beam_args or input_megabytes(args.input, args.input_format) > args.single_process_max_mb:
            report = filter_with_beam(args.input, args.out, beam_args, **options)
        else:
            report = filter_records(args.input, args.out, **options)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    print(json.dumps({k: report[k] for k in ("inputs", "scored", "kept", "kept_fraction", "path")}
                     | {"bad_inputs": report["bad_inputs"]["by_reason"]}, indent=2))


if __name__ == "__main__":
    main()
