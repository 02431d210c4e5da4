"""Offline cache of tokenized Tasks on Apache Beam: the "[Beam offline cache]" step of DESIGN.md's
data flow, between the seqio Tasks and the training batches.

    python -m data_pipeline.cache --mixture embedded_code_textbook --out CACHE_DIR \
        [--vocabulary PATH] [--source stack=gs://.../*.jsonl ...] [--splits train,validation] \
        [--overwrite] [BEAM OPTIONS, e.g. --runner=DataflowRunner --project=P --region=R ...]

Runs locally on the DirectRunner by default; Dataflow, Flink or Spark take the usual Beam
`--runner=...` options (the data_pipeline package and the vocabulary must be reachable from the
workers, e.g. `--setup_file=./setup.py` and a `gs://` vocabulary path).

It is seqio's cache-tasks job (`seqio.scripts.cache_tasks_main`) with one change: seqio's job
reshuffles examples globally before writing, while this one writes cache file *i* from source shard
*i*, in source order. The cache is then a drop-in for on-the-fly tokenization: the loader reads it
shard by shard with seqio's own cached-source reader, skips records by position on resume, and
gets exactly the batches it would have computed (`training reads the cache when data.cache_dir is
set and the Task's COMPLETED marker exists`). Layout (seqio's): `CACHE_DIR/<task>/` with
`<split>.tfrecord-0000i-of-0000n`, `info.<split>.json`, `stats.<split>.json`, `COMPLETED`.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Iterator, Mapping, Sequence

import apache_beam as beam
import seqio
import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions
from seqio import beam_utils

from data_pipeline import tasks
from data_pipeline.sources import MAX_BAD_FRACTION, SOURCES


class _CacheShard(beam.DoFn):
    """Preprocesses (up to the CacheDatasetPlaceholder) one source shard of one split and writes it
    as one cache file; emits the examples for the stats."""

    def __init__(self, task_name: str, source: str, split: str, out_prefix: str, num_shards: int,
                 registration: Mapping):
        self._task_name, self._source, self._split = task_name, source, split
        self._out_prefix, self._num_shards = out_prefix, num_shards
        self._registration = dict(registration)

    def setup(self) -> None:
        # Remote workers start with empty registries.
        self._task = tasks.register_task(self._task_name, self._source, **self._registration)

    def process(self, shard: int) -> Iterator[dict]:
        ds = self._task.source.get_dataset(self._split, shuffle=False,
                                           shard_info=seqio.ShardInfo(shard, self._num_shards))
        ds = self._task.preprocess_precache(ds)
        path = f"{self._out_prefix}-{shard:05d}-of-{self._num_shards:05d}"
        # Written under a temporary name and renamed, so a retried bundle never leaves half a file.
        with tf.io.TFRecordWriter(path + ".incomplete") as writer:
            for ex in ds.as_numpy_iterator():
                writer.write(seqio.dict_to_tfexample(ex).SerializeToString())
                yield ex
        tf.io.gfile.rename(path + ".incomplete", path, overwrite=True)


def _write_info(out_dir: str, split: str, num_shards: int) -> None:
    info = {"num_shards": num_shards, "seqio_version": seqio.__version__,
            "features": {"targets": {"shape": [None], "dtype": "int32"}}}
    with tf.io.gfile.GFile(seqio.get_cached_info_path(out_dir, split), "w") as f:
        json.dump(info, f, indent=2)


def cache_mixture(mixture: str, out_dir: str, *, vocabulary: str = "",
                  sources: Mapping[str, str] | None = None, splits: Sequence[str] = tasks.SPLITS,
                  max_bad_fraction: float = MAX_BAD_FRACTION, overwrite: bool = False,
                  pipeline_args: Sequence[str] = ("--runner=DirectRunner",)) -> list[str]:
    """Caches every Task of `mixture` not yet cached under `out_dir`; returns their directories."""
    registration = dict(vocabulary=vocabulary, sources=dict(sources or {}),
                        max_bad_fraction=max_bad_fraction)
    names = tasks.task_names(mixture, vocabulary, sources, max_bad_fraction)
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
        for source, task, task_dir in todo:
            num_shards = len(task.source.shards)
            for split in splits:
                label = f"{task.name}_{split}"
                _write_info(task_dir, split, num_shards)
                examples = (
                    pipeline
                    | f"{label}_shards" >> beam.Create(range(num_shards))
                    | f"{label}_cache" >> beam.ParDo(_CacheShard(
                        task.name, source, split, seqio.get_cached_tfrecord_prefix(task_dir, split),
                        num_shards, registration)))
                _ = (examples
                     | f"{label}_stats" >> beam_utils.GetStats(task.output_features)
                     | f"{label}_write_stats" >> beam_utils.WriteJson(
                         seqio.get_cached_stats_path(task_dir, split)))
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
    parser = argparse.ArgumentParser(prog="python -m data_pipeline.cache",
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
    done = cache_mixture(args.mixture, args.out, vocabulary=args.vocabulary,
                         sources=_parse_sources(args.source), splits=args.splits.split(","),
                         max_bad_fraction=args.max_bad_fraction, overwrite=args.overwrite,
                         pipeline_args=beam_args or ["--runner=DirectRunner"])
    print("\n".join(done) if done else "everything already cached")


if __name__ == "__main__":
    main()
