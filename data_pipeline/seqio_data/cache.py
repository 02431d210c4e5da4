"""Offline cache of tokenized Tasks on Apache Beam: the "[Beam offline cache]" step of DESIGN.md's
data flow, between the seqio Tasks and the training batches.

    python -m data_pipeline.seqio_data.cache --mixture embedded_code_textbook --out CACHE_DIR \
        [--vocabulary PATH] [--source stack=gs://.../*.jsonl ...] [--splits train,validation] \
        [--overwrite] [BEAM OPTIONS, e.g. --runner=DataflowRunner --project=P --region=R ...]

Runs locally on the DirectRunner by default; Dataflow, Flink or Spark take the usual Beam
`--runner=...` options (the data_pipeline package and the vocabulary must be reachable from the
workers, e.g. `--setup_file=./setup.py` and a `gs://` vocabulary path).

It is seqio's cache-tasks job (`seqio.scripts.cache_tasks_main`) with one change: seqio's job
reshuffles examples globally before writing, while this one writes cache file *i* from source shard
*i*, in source order, and its stats come from one small dict per shard instead of every example.
The cache is then a drop-in for on-the-fly tokenization: the loader reads it
shard by shard with seqio's own cached-source reader, skips records by position on resume, and
gets exactly the batches it would have computed (`training reads the cache when data.cache_dir is
set and the Task's COMPLETED marker exists`). Layout (seqio's): `CACHE_DIR/<task>/` with
`<split>.tfrecord-0000i-of-0000n`, `info.<split>.json`, `stats.<split>.json`, `COMPLETED`.
"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from typing import Iterable, Iterator, Mapping, Sequence

import apache_beam as beam
import seqio
import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions
from seqio import beam_utils

from data_pipeline.seqio_data import tasks
from data_pipeline.sources import MAX_BAD_FRACTION, SOURCES


class _CacheShard(beam.DoFn):
    """Preprocesses (up to the CacheDatasetPlaceholder) one source shard of one split, writes it
    as one cache file and emits the shard's stats (examples, tokens per feature, longest)."""

    def __init__(self, task_name: str, source: str, split: str, out_prefix: str, num_shards: int,
                 registration: Mapping):
        self._task_name, self._source, self._split = task_name, source, split
        self._out_prefix, self._num_shards = out_prefix, num_shards
        self._registration = dict(registration)

    def setup(self) -> None:
        # Remote workers start with empty registries.
        self._task = tasks.register_task(self._task_name, self._source, **self._registration)
        # seqio's own per-example token count, so the stats mean what seqio's cache job's mean.
        self._count_tokens = beam_utils._CountTokens(self._task.output_features)

    def process(self, shard: int) -> Iterator[dict]:
        ds = self._task.source.get_dataset(self._split, shuffle=False,
                                           shard_info=seqio.ShardInfo(shard, self._num_shards))
        ds = self._task.preprocess_precache(ds)
        path = f"{self._out_prefix}-{shard:05d}-of-{self._num_shards:05d}"
        stats: dict = {"examples": 0}
        # Written under a temporary name of this attempt and renamed, so a retried or duplicated
        # bundle never leaves half a file nor renames another attempt's.
        partial = f"{path}.incomplete-{uuid.uuid4().hex}"
        with tf.io.TFRecordWriter(partial) as writer:
            for ex in ds.as_numpy_iterator():
                # Deterministic: a map field's order otherwise follows the process's string hash,
                # and the same cache written by two workers would differ in its bytes.
                writer.write(seqio.dict_to_tfexample(ex).SerializeToString(deterministic=True))
                stats["examples"] += 1
                for name, tokens in self._count_tokens.process(ex):
                    stats[name] = stats.get(name, 0) + tokens
                    longest = name.replace("tokens", "max_tokens")
                    stats[longest] = max(stats.get(longest, 0), tokens)
        tf.io.gfile.rename(partial, path, overwrite=True)
        yield stats


def _write_stats(path: str, shard_stats: Iterable[dict]) -> str:
    """Sums the shards' stats into seqio's `stats.<split>.json` (same keys and layout as its
    GetStats + WriteJson), written in one step from one small dict per shard."""
    merged: dict = {}
    for stats in shard_stats:
        for name, value in stats.items():
            merged[name] = max(merged.get(name, 0), value) if "max_tokens" in name \
                else merged.get(name, 0) + value
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(merged, sort_keys=True, indent=2) + "\n")
    return path


def _write_info(out_dir: str, split: str, num_shards: int) -> None:
    info = {"num_shards": num_shards, "seqio_version": seqio.__version__,
            "features": {"targets": {"shape": [None], "dtype": "int32"}}}
    with tf.io.gfile.GFile(seqio.get_cached_info_path(out_dir, split), "w") as f:
        json.dump(info, f, indent=2)


def cache_mixture(mixture: str, out_dir: str, *, vocabulary: str = "",
                  sources: Mapping[str, str] | None = None, splits: Sequence[str] = tasks.SPLITS,
                  max_bad_fraction: float = MAX_BAD_FRACTION, overwrite: bool = False,
                  pipeline_args: Sequence[str] = ("--runner=DirectRunner",)) -> list[str]:
    """Caches every Task of `mixture` not yet cached under `out_dir`; returns their directories.
    A source of the mixture with no shards given (stackoverflow, which the data recipe does not
    make) is left out, as training leaves out a source whose rate is 0."""
    registration = dict(vocabulary=vocabulary, sources=dict(sources or {}),
                        max_bad_fraction=max_bad_fraction)
    names = {source: name for source, name in tasks.task_names(mixture, vocabulary, sources, max_bad_fraction).items()
             if source.startswith("embedded_") or (sources or {}).get(source)}
    if not names:
        raise ValueError(f"mixture {mixture!r}: no shards given for any of its sources "
                         f"{list(tasks.MIXTURES[mixture])} (--source NAME=PATTERN)")
    todo = []
    for source, name in names.items():
        task = tasks.register_task(name, source, **registration)
        task_dir = os.path.join(out_dir, seqio.get_task_dir_from_name(name))
        if tf.io.gfile.exists(os.path.join(task_dir, "COMPLETED")) and not overwrite:
            continue
        if tf.io.gfile.exists(task_dir):
            tf.io.gfile.rmtree(task_dir)
        tf.io.gfile.makedirs(task_dir)
        todo.append((source, task, task_dir))
    if not todo:
        return []
    with beam.Pipeline(options=PipelineOptions(list(pipeline_args))) as pipeline:
        written = []
        for source, task, task_dir in todo:
            num_shards = len(task.source.shards)
            for split in splits:
                label = f"{task.name}_{split}"
                _write_info(task_dir, split, num_shards)
                written.append(
                    pipeline
                    | f"{label}_shards" >> beam.Create(range(num_shards))
                    | f"{label}_cache" >> beam.ParDo(_CacheShard(
                        task.name, source, split, seqio.get_cached_tfrecord_prefix(task_dir, split),
                        num_shards, registration))
                    | f"{label}_one_place" >> beam.Map(lambda stats: (None, stats))
                    | f"{label}_gather_stats" >> beam.GroupByKey()
                    | f"{label}_write_stats" >> beam.MapTuple(
                        lambda _, shard_stats, path=seqio.get_cached_stats_path(task_dir, split):
                        _write_stats(path, shard_stats)))
        # One last step that depends on every write: Beam's DaskRunner computes only the last.
        _ = written | "every write" >> beam.Flatten()
    for _, _, task_dir in todo:
        with tf.io.gfile.GFile(os.path.join(task_dir, "COMPLETED"), "w") as f:
            f.write("")
    return [task_dir for _, _, task_dir in todo]


def _parse_sources(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, pattern = item.partition("=")
        if not sep or name not in SOURCES:
            raise ValueError(f"--source {item!r}: expected NAME=PATTERN with NAME in {SOURCES}")
        out[name] = pattern
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m data_pipeline.seqio_data.cache",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mixture", required=True, choices=sorted(tasks.MIXTURES))
    parser.add_argument("--out", required=True, help="cache directory (local or gs://)")
    parser.add_argument("--vocabulary", default="", help="'' = the shipped SentencePiece model")
    parser.add_argument("--source", action="append", default=[], help="NAME=PATTERN, repeatable")
    parser.add_argument("--splits", default=",".join(tasks.SPLITS))
    parser.add_argument("--max-bad-fraction", type=float, default=MAX_BAD_FRACTION)
    parser.add_argument("--overwrite", action="store_true")
    args, beam_args = parser.parse_known_args(argv)
    try:
        done = cache_mixture(args.mixture, args.out, vocabulary=args.vocabulary,
                             sources=_parse_sources(args.source), splits=args.splits.split(","),
                             max_bad_fraction=args.max_bad_fraction, overwrite=args.overwrite,
                             pipeline_args=beam_args or ["--runner=DirectRunner"])
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    print("\n".join(done) if done else "everything already cached")


if __name__ == "__main__":
    main()
