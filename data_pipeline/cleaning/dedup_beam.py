"""The dedup stage as an Apache Beam pipeline, for inputs that need a cluster: the same signatures,
bands, clusters and keep rule as the single process (`data_pipeline.dedup`), so it writes the same
files.

Steps: each shard is scanned for (content hash, member) and one signature per distinct content;
members are grouped by content hash (exact duplicates); signatures are grouped by (band index,
band bytes) and every pair in a band bucket whose estimated Jaccard reaches the threshold is a
near pair; clusters are built in one step from the groups that matter (more than one member, or
part of a near pair) and the near pairs; each shard is then re-read and written without its
dropped records.
"""

from __future__ import annotations

import itertools
from typing import Iterator, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from data_pipeline.cleaning import clusters as clusters_lib
from data_pipeline.cleaning import dedup_report, intake, minhash

_INTAKE = "intake"
_SIGNATURE = "signature"


class _ScanShard(beam.DoFn):
    """Emits (hash, member) per record, and tagged (hash, hashvalues) per distinct content of the
    shard and the shard's intake."""

    def __init__(self, config: minhash.MinHashConfig, max_chars: int):
        self._config, self._max_chars = config, max_chars

    def process(self, indexed_path: tuple[int, str]) -> Iterator:
        index, path = indexed_path
        shard = intake.ShardIntake(path)
        seen = set()
        for entry in intake.scan_shard(path, index, shard, self._max_chars):
            text = entry.record["text"]
            digest = minhash.content_hash(text)
            yield digest, clusters_lib.Member(entry.key, entry.record["id"], len(text))
            if digest not in seen:
                seen.add(digest)
                yield beam.pvalue.TaggedOutput(
                    _SIGNATURE, (digest, minhash.signature(text, self._config).hashvalues))
        yield beam.pvalue.TaggedOutput(_INTAKE, shard)


def _near_pairs_in_band(bucket: tuple, threshold: float) -> Iterator[tuple]:
    _, items = bucket
    items = sorted(items, key=lambda item: item[0])
    for (a, va), (b, vb) in itertools.combinations(items, 2):
        similarity = minhash.estimated_jaccard(va, vb)
        if similarity >= threshold:
            yield (a, b), (va, vb)


def _assemble(groups: list, near_pairs: list) -> list[clusters_lib.Cluster]:
    representative = {d: min(members, key=clusters_lib.keep_order) for d, members in groups}
    values, digest_of = {}, {}
    for (a, b), (va, vb) in near_pairs:
        values[a], values[b] = va, vb
    for digest, members in groups:
        digest_of.update((m.key, digest) for m in members)
    return clusters_lib.build_clusters(
        (members for _, members in groups),
        [(representative[a], representative[b]) for (a, b), _ in near_pairs],
        lambda a, b: minhash.estimated_jaccard(values[digest_of[a]], values[digest_of[b]]))


class _WriteKept(beam.DoFn):
    def __init__(self, out_dir: str, num_shards: int, max_chars: int, fmt: str):
        self._out_dir, self._num_shards = out_dir, num_shards
        self._max_chars, self._fmt = max_chars, fmt

    def process(self, indexed_path: tuple[int, str], clusters: list) -> Iterator[int]:
        index, path = indexed_path
        dropped = clusters_lib.dropped_keys(clusters)
        entries = intake.scan_shard(path, index, intake.ShardIntake(path), self._max_chars)
        yield intake.write_output_shard(
            self._out_dir, index, self._num_shards,
            (e.record for e in entries if e.key not in dropped), self._fmt)


def run(input_pattern: str, paths: Sequence[str], out_dir: str, config: minhash.MinHashConfig,
        max_chars: int, fmt: str, beam_args: Sequence[str]) -> None:
    """Runs the pipeline (DirectRunner unless `beam_args` say otherwise); it writes the kept
    shards and the reports."""
    with beam.Pipeline(options=PipelineOptions(list(beam_args) or ["--runner=DirectRunner"])) as p:
        shards = p | "shards" >> beam.Create(list(enumerate(paths)))
        scanned = shards | "scan" >> beam.ParDo(_ScanShard(config, max_chars)).with_outputs(
            _INTAKE, _SIGNATURE, main="members")
        near_pairs = (
            scanned[_SIGNATURE]
            | "one signature per content" >> beam.CombinePerKey(_first)
            | "bands" >> beam.FlatMap(lambda item: [(band, item)
                                                    for band in minhash.band_keys(item[1], config)])
            | "group bands" >> beam.GroupByKey()
            | "verify" >> beam.FlatMap(_near_pairs_in_band, config.threshold)
            | "one per pair" >> beam.CombinePerKey(_first))
        paired = (near_pairs
                  | "pair hashes" >> beam.FlatMap(lambda item: [(d, True) for d in item[0]])
                  | "distinct hashes" >> beam.CombinePerKey(_first))
        groups = (
            scanned.members
            | "group content" >> beam.GroupByKey()
            | "as lists" >> beam.MapTuple(lambda d, members: (d, list(members)))
            | "that matter" >> beam.Filter(lambda g, paired: len(g[1]) > 1 or g[0] in paired,
                                           paired=beam.pvalue.AsDict(paired)))
        clusters = (
            p | "once" >> beam.Create([None])
            | "clusters" >> beam.Map(lambda _, g, n: _assemble(g, n),
                                     g=beam.pvalue.AsList(groups),
                                     n=beam.pvalue.AsList(near_pairs)))
        _ = shards | "write" >> beam.ParDo(_WriteKept(out_dir, len(paths), max_chars, fmt),
                                           clusters=beam.pvalue.AsSingleton(clusters))
        _ = clusters | "reports" >> beam.Map(
            lambda c, intakes: dedup_report.write_reports(out_dir, input_pattern, c, intakes,
                                                          config),
            intakes=beam.pvalue.AsList(scanned[_INTAKE]))


def _first(values):
    """Combines values that are equal by construction (the same content's signature, the same
    pair seen in several bands)."""
    return next(iter(values))
