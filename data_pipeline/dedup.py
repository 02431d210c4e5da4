"""Near-duplicate removal: the "dedup (MinHash)" stage of DESIGN.md's data flow, between the kept
files / synthetic data and decontamination.

    python -m data_pipeline.dedup --input IN --out DIR [--threshold 0.7] [--num-perm 128]
        [--shingle-words 5] [--max-chars 1000000] [--format jsonl]
        [--beam [BEAM OPTIONS, e.g. --runner=DataflowRunner --project=P ...]]

Reads record shards (a file, directory or glob, local or gs://; any mix of sources). Writes to DIR:
- `records-0000i-of-0000n.<format>`: the kept records of input shard i, in input order;
- `clusters.jsonl`: one line per duplicate cluster: `cluster_id`, `kept` id, `dropped` ids each
  with its estimated Jaccard similarity to the kept record and `match` ("exact" or "near");
- `dedup_report.json`: counts, MinHash settings (threshold, permutations, bands x rows), the keep
  rule and the bad input (malformed lines, empty / huge / undecodable records, counted and listed).

Exact duplicates (same sha256 of the text) are removed first; then MinHash (datasketch) over word
5-gram shingles and LSH bands find near-duplicates, within and across sources: in every band
bucket each member is checked against the bucket's leader, not against every other member
(`cleaning.band_buckets`), and linked when its estimated Jaccard similarity reaches the threshold.
Each connected cluster keeps one record: the longest text, ties by the smallest id, then by shard
and line, so the kept set does not depend on input order.

`--beam` runs the same computation as an Apache Beam pipeline (DirectRunner unless Beam options
say otherwise, e.g. `--runner=DataflowRunner`): signatures per shard, content hashes and LSH bands
as keyed groupings, clusters as distributed connected components (`cleaning.components`), then
each shard filtered in parallel. It writes the same files as the single process, which holds
every signature in memory and suits inputs up to a few hundred thousand records.
"""

from __future__ import annotations

import argparse
from typing import Sequence

import numpy as np
import tensorflow as tf

from data_pipeline import records
from data_pipeline.cleaning import band_buckets
from data_pipeline.cleaning import clusters as clusters_lib
from data_pipeline.cleaning import dedup_report, intake, minhash


def find_clusters(paths: Sequence[str], config: minhash.MinHashConfig, max_chars: int,
                  ) -> tuple[list[clusters_lib.Cluster], list[intake.ShardIntake]]:
    """First pass: exact groups by content hash, one signature per distinct content, LSH band
    buckets linked to their leaders (`band_buckets.star_edges`), clusters by the keep rule."""
    groups: dict[str, list[clusters_lib.Member]] = {}
    values: dict[str, np.ndarray] = {}
    buckets: dict[tuple[int, bytes], list[str]] = {}
    intakes = []
    for index, path in enumerate(paths):
        shard = intake.ShardIntake(path)
        for entry in intake.scan_shard(path, index, shard, max_chars):
            text = entry.record["text"]
            digest = minhash.content_hash(text)
            groups.setdefault(digest, []).append(
                clusters_lib.Member(entry.key, entry.record["id"], len(text)))
            if digest not in values:
                values[digest] = minhash.signature(text, config).hashvalues
                for band in minhash.band_keys(values[digest], config):
                    buckets.setdefault(band, []).append(digest)
        intakes.append(shard)
    representative = {digest: min(group, key=clusters_lib.keep_order)
                      for digest, group in groups.items()}
    near_pairs = {edge for bucket in buckets.values() if len(bucket) > 1
                  for edge in band_buckets.star_edges(((d, values[d]) for d in bucket),
                                                      config.threshold)}
    digest_of = {m.key: d for d, group in groups.items() for m in group}
    clusters = clusters_lib.build_clusters(
        groups.values(), [(representative[a], representative[b]) for a, b in near_pairs],
        lambda a, b: minhash.estimated_jaccard(values[digest_of[a]], values[digest_of[b]]))
    return clusters, intakes


def write_kept(paths: Sequence[str], out_dir: str, dropped: set[str], max_chars: int,
               fmt: str) -> int:
    """Second pass: every shard again, minus the dropped keys."""
    kept = 0
    for index, path in enumerate(paths):
        entries = intake.scan_shard(path, index, intake.ShardIntake(path), max_chars)
        kept += intake.write_output_shard(
            out_dir, index, len(paths), (e.record for e in entries if e.key not in dropped), fmt)
    return kept


def dedup(input_pattern: str, out_dir: str, config: minhash.MinHashConfig = minhash.MinHashConfig(),
          max_chars: int = intake.DEFAULT_MAX_CHARS, fmt: str = "jsonl",
          beam_args: Sequence[str] | None = None) -> dict:
    """Writes the kept shards and both reports to `out_dir`; returns the report. With
    `beam_args` (a list, possibly empty) it runs as a Beam pipeline."""
    paths = records.expand_pattern(input_pattern)
    tf.io.gfile.makedirs(out_dir)
    if beam_args is not None:
        from data_pipeline.cleaning import dedup_beam

        dedup_beam.run(input_pattern, paths, out_dir, config, max_chars, fmt, beam_args)
        return dedup_report.read_report(out_dir)
    clusters, intakes = find_clusters(paths, config, max_chars)
    write_kept(paths, out_dir, clusters_lib.dropped_keys(clusters), max_chars, fmt)
    return dedup_report.write_reports(out_dir, input_pattern, clusters, intakes, config)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m data_pipeline.dedup", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", required=True, help="record shards: file, directory or glob")
    parser.add_argument("--out", required=True, help="output directory (local or gs://)")
    parser.add_argument("--threshold", type=float, default=minhash.DEFAULT_THRESHOLD,
                        help="estimated Jaccard similarity at which two records are duplicates")
    parser.add_argument("--num-perm", type=int, default=minhash.DEFAULT_NUM_PERM)
    parser.add_argument("--shingle-words", type=int, default=5)
    intake.add_stage_options(parser)
    args, beam_args = intake.parse_stage_args(parser, argv)
    try:
        config = minhash.MinHashConfig(args.threshold, args.num_perm, args.shingle_words)
        report = dedup(args.input, args.out, config, args.max_chars, args.format, beam_args)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    print(f"kept {report['kept']} of {report['records_read']} records "
          f"(dropped {report['dropped']['exact']} exact, {report['dropped']['near']} near "
          f"duplicates in {report['clusters']} clusters); "
          f"{intake.bad_input_line(report['bad_input'])}; report in {args.out}")


if __name__ == "__main__":
    main()
