"""The dedup stage as an Apache Beam pipeline, for inputs that need a cluster: the same signatures,
band buckets, edges and keep rule as the single process (`data_pipeline.dedup`), so it writes the
same files, and no step holds all signatures or all edges in one worker.

Steps: each shard is scanned for (content hash, member) per record and one signature per distinct
content; signatures are grouped by (band index, band bytes) and each bucket linked to its leaders
(`band_buckets.star_edges`, linear in the bucket); clusters are the connected components of those
edges (`components.ConnectedComponents`); members and signatures are then grouped by component, so
a worker holds one cluster at a time, and each cluster's kept and dropped records follow from the
keep rule; the dropped keys are grouped by shard and each shard is re-read and written without
them. The reports are written in one step from the clusters and the shards' intake (one line per
cluster, no signatures or edges).

The pipeline keeps to what every runner we test carries (DirectRunner in-process and
multi-process, Beam's DaskRunner): one output per step instead of tagged outputs, groupings
instead of side inputs, and a single final step that depends on every write, because the
DaskRunner computes only the last step of a pipeline and what it depends on.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from data_pipeline.cleaning import band_buckets
from data_pipeline.cleaning import clusters as clusters_lib
from data_pipeline.cleaning import components, dedup_report, intake, minhash

_MEMBER, _SIGNATURE, _INTAKE = "member", "signature", "intake"


class _ScanShard(beam.DoFn):
    """(kind, value): (hash, member) per record, (hash, hashvalues) per distinct content of the
    shard, and the shard's intake."""

    def __init__(self, config: minhash.MinHashConfig, max_chars: int):
        self._config, self._max_chars = config, max_chars

    def process(self, indexed_path: tuple[int, str]) -> Iterator[tuple[str, object]]:
        index, path = indexed_path
        shard = intake.ShardIntake(path)
        seen = set()
        for entry in intake.scan_shard(path, index, shard, self._max_chars):
            text = entry.record["text"]
            digest = minhash.content_hash(text)
            yield _MEMBER, (digest, clusters_lib.Member(entry.key, entry.record["id"], len(text)))
            if digest not in seen:
                seen.add(digest)
                yield _SIGNATURE, (digest, minhash.signature(text, self._config).hashvalues)
        yield _INTAKE, shard


def _of_kind(scanned, kind: str):
    return (scanned
            | f"{kind}s" >> beam.Filter(lambda item: item[0] == kind)
            | f"{kind} values" >> beam.Map(lambda item: item[1]))


def _by_component(digest: str, grouped: dict) -> Iterator[tuple[str, tuple]]:
    """(component label, (hash, members, hashvalues)) for contents that belong to a cluster: those
    with a near edge, and exact groups of more than one record."""
    members, labels = list(grouped[_MEMBER]), list(grouped["label"])
    if labels or len(members) > 1:
        values = next(iter(grouped[_SIGNATURE]), None)
        yield (labels[0] if labels else digest), (digest, members, values)


def _cluster(_, contents) -> Iterator[clusters_lib.Cluster]:
    contents = list(contents)
    values = {digest: v for digest, _, v in contents}
    digest_of = {m.key: digest for digest, members, _ in contents for m in members}
    cluster = clusters_lib.component_cluster(
        [members for _, members, _ in contents],
        lambda a, b: minhash.estimated_jaccard(values[digest_of[a]], values[digest_of[b]]))
    if cluster is not None:
        yield cluster


class _WriteKept(beam.DoFn):
    def __init__(self, out_dir: str, num_shards: int, max_chars: int, fmt: str):
        self._out_dir, self._num_shards = out_dir, num_shards
        self._max_chars, self._fmt = max_chars, fmt

    def process(self, shard: tuple[int, dict]) -> Iterator[int]:
        index, grouped = shard
        (path,), dropped = list(grouped["path"]), set(grouped["dropped"])
        entries = intake.scan_shard(path, index, intake.ShardIntake(path), self._max_chars)
        yield intake.write_output_shard(
            self._out_dir, index, self._num_shards,
            (e.record for e in entries if e.key not in dropped), self._fmt)


def run(input_pattern: str, paths: Sequence[str], out_dir: str, config: minhash.MinHashConfig,
        max_chars: int, fmt: str, beam_args: Sequence[str],
        rounds: int = components.DEFAULT_ROUNDS) -> None:
    """Runs the pipeline (DirectRunner unless `beam_args` say otherwise); it writes the kept
    shards and the reports."""
    with beam.Pipeline(options=PipelineOptions(list(beam_args) or ["--runner=DirectRunner"])) as p:
        shards = p | "shards" >> beam.Create(list(enumerate(paths)))
        scanned = shards | "scan" >> beam.ParDo(_ScanShard(config, max_chars))
        members = _of_kind(scanned, _MEMBER)
        signatures = (_of_kind(scanned, _SIGNATURE)
                      | "one signature per content" >> beam.CombinePerKey(_first))
        labels = (
            signatures
            | "bands" >> beam.FlatMap(lambda item: [(band, item)
                                                    for band in minhash.band_keys(item[1], config)])
            | "group bands" >> beam.GroupByKey()
            | "link to leaders" >> beam.FlatMapTuple(
                lambda _, bucket: band_buckets.star_edges(bucket, config.threshold))
            | "one per edge" >> beam.Distinct()
            | "components" >> components.ConnectedComponents(rounds))
        clusters = (
            {_MEMBER: members, _SIGNATURE: signatures, "label": labels}
            | "per content" >> beam.CoGroupByKey()
            | "by component" >> beam.FlatMapTuple(_by_component)
            | "group component" >> beam.GroupByKey()
            | "clusters" >> beam.FlatMapTuple(_cluster))
        dropped = clusters | "dropped keys" >> beam.FlatMap(
            lambda c: [(intake.shard_of_key(m.key), m.key) for m, _, _ in c.dropped])
        written = ({"path": shards, "dropped": dropped}
                   | "per shard" >> beam.CoGroupByKey()
                   | "write" >> beam.ParDo(_WriteKept(out_dir, len(paths), max_chars, fmt)))
        reported = (
            {"clusters": clusters | "clusters to report" >> beam.Map(lambda c: (None, c)),
             "intakes": _of_kind(scanned, _INTAKE) | "intakes to report" >> beam.Map(
                 lambda shard: (None, shard))}
            | "all for the report" >> beam.CoGroupByKey()
            | "reports" >> beam.MapTuple(lambda _, both: dedup_report.write_reports(
                out_dir, input_pattern, clusters_lib.ordered(both["clusters"]),
                list(both["intakes"]), config)))
        _ = ((written, reported | "report done" >> beam.Map(lambda _: 0))
             | "every write" >> beam.Flatten())


def _first(values):
    """Combines values that are equal by construction (the same content's signature)."""
    return next(iter(values))
