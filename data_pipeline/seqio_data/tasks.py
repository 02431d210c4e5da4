"""seqio Tasks (one per source) and Mixtures: the "seqio Tasks ─► Mixtures" stage of DESIGN.md's
data flow, between the record shards and the training batches built by `loader.py`.

Sources and their Tasks:

| source          | records from                                   | seqio Task            |
| --------------- | ---------------------------------------------- | --------------------- |
| `stack`         | filtered Stack shards (`data.sources.stack`)   | `phi1_stack`          |
| `stackoverflow` | filtered StackOverflow shards                  | `phi1_stackoverflow`  |
| `textbook`      | synthetic textbook shards                      | `phi1_textbook`       |
| `exercises`     | synthetic exercise shards                      | `phi1_exercises`      |
| embedded stack  | the interpreter's standard library             | `phi1_embedded_stack` |
| embedded ...    | `embedded/textbook.jsonl`, `embedded/exercises.jsonl` | `phi1_embedded_textbook`, ... |

Mixtures (`MIXTURES`): `code_textbook` (stack + stackoverflow + textbook; pretraining),
`code_exercises` (exercises; finetuning), `embedded_code_textbook`, `embedded_code_exercises`.
Default rates are proportional to each source's estimated token count (shard bytes times the
tokens-per-byte of a sample); `rates` overrides them, and a rate of 0 leaves a source out.

A Task's preprocessing: text -> tokens (cacheable, see `cache.py`) | append EOS -> split into chunks
of at most `sequence_length["targets"]` tokens (never truncated). Chunks carry `chunk_index` and
`num_chunks` so the loader can count whole documents for its resumable position.

Splits: a record belongs to `validation` when crc32 of its id falls in the first
`VALIDATION_PERMILLE` of 1000 buckets, else to `train`; stable across runs, hosts and containers.

Tasks are registered per configuration: the embedded Tasks with the default vocabulary have the
plain names above; Tasks over configured shards, and any other vocabulary, add a `_<hash>` suffix
of their configuration (`task_names`), so neither the registry nor a cache confuses two of them.
As seqio's own Task modules do, importing this module registers the embedded default's Tasks and
Mixtures under those plain names, so `seqio.get_mixture_or_task("embedded_code_textbook")` (or
"phi1_embedded_textbook") works after `import data_pipeline.seqio_data.tasks`; nothing is read until a
dataset is asked for. The source names, mixtures and splits are declared in `sources.py`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import zlib
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import seqio
import tensorflow as tf

from data_pipeline import records, stdlib_source
from data_pipeline.seqio_data import vocabularies
from data_pipeline.sources import MAX_BAD_FRACTION, MIXTURES, SPLITS

# The shipped data stays in `data_pipeline/embedded/`, shared with the curation and synthesis stages.
EMBEDDED_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "embedded")
EMBEDDED_SOURCES = {"textbook": os.path.join(EMBEDDED_DIR, "textbook.jsonl"),
                    "exercises": os.path.join(EMBEDDED_DIR, "exercises.jsonl")}
VALIDATION_PERMILLE = 20
# The standard library is cut into this many virtual shards so hosts and the cache job can split it.
STDLIB_SHARDS = 16
# How much text the token-rate estimate tokenizes per source.
_RATE_SAMPLE_BYTES = 1 << 16


def split_of(record_id: str) -> str:
    bucket = zlib.crc32(record_id.encode("utf-8")) % 1000
    return "validation" if bucket < VALIDATION_PERMILLE else "train"


class RecordSource(seqio.DataSource):
    """Records of named shards as `{"id", "text"}` examples of one split.

    `list_shards()` names the shards; `read(shard)` yields that shard's valid records. Shard i of n
    seqio shards is exactly source shard i when there are n shards (what the cache job asks
    for), otherwise hosts take whole shards round-robin, or records round-robin when there are
    fewer shards than hosts (`host_units`)."""

    def __init__(self, name: str, list_shards: Callable[[], list[str]],
                 read: Callable[[str], Iterator[dict]], shard_bytes: Callable[[str], int]):
        super().__init__(splits=SPLITS)
        self.name = name
        self._list_shards = list_shards
        self._read = read
        self.shard_bytes = shard_bytes

    @property
    def supports_arbitrary_sharding(self) -> bool:
        return True

    @functools.cached_property
    def shards(self) -> list[str]:
        shards = self._list_shards()
        if not any(self.shard_bytes(s) for s in shards):
            raise records.EmptySourceError(f"source {self.name!r}: every shard is empty: {shards}")
        return shards

    def list_shards(self, split: str) -> Sequence[str]:
        return self.shards

    def records(self, shard: str, split: str) -> Iterator[dict]:
        return (r for r in self._read(shard) if split_of(r["id"]) == split)

    def shard_dataset(self, shard: str, split: str) -> tf.data.Dataset:
        def generate():
            for r in self.records(shard, split):
                yield {"id": r["id"], "text": r["text"]}

        spec = {"id": tf.TensorSpec([], tf.string), "text": tf.TensorSpec([], tf.string)}
        return tf.data.Dataset.from_generator(generate, output_signature=spec)

    def get_dataset(self, split: str = "train", shuffle: bool = True, seed: int | None = None,
                    shard_info: seqio.ShardInfo | None = None, *, sequence_length=None,
                    use_cached: bool = False, num_epochs: int | None = 1) -> tf.data.Dataset:
        del sequence_length, use_cached, num_epochs  # seqio's signature; unused by sources
        shard_info = shard_info or seqio.ShardInfo(0, 1)
        units = host_units(len(self.shards), shard_info.index, shard_info.num_shards)
        if shuffle:
            units = [units[i] for i in unit_order(len(units), seed or 0, epoch=0)]
        datasets = [self.shard_dataset(self.shards[i], split).shard(count, index)
                    for i, index, count in units]
        ds = datasets[0]
        for more in datasets[1:]:
            ds = ds.concatenate(more)
        return ds


def host_units(num_shards: int, host: int, num_hosts: int) -> list[tuple[int, int, int]]:
    """This host's reading units `(shard, record_index, record_count)`: whole shards round-robin
    when there are at least as many shards as hosts, else every shard, one record in num_hosts."""
    if num_shards >= num_hosts:
        return [(i, 0, 1) for i in range(host, num_shards, num_hosts)]
    return [(i, host, num_hosts) for i in range(num_shards)]


def unit_order(num_units: int, seed: int, epoch: int) -> list[int]:
    """The order a host reads its units in one epoch: a permutation fixed by (seed, epoch)."""
    return np.random.default_rng([seed, epoch, 0x5EC10]).permutation(num_units).tolist()


@seqio.map_over_dataset
def _text_to_targets(ex: Mapping[str, tf.Tensor]) -> dict:
    return {"targets": ex["text"]}


def chunk_tokens(dataset: tf.data.Dataset, sequence_length: Mapping[str, int] | None = None
                 ) -> tf.data.Dataset:
    """Splits each document's `targets` into consecutive chunks of at most
    `sequence_length["targets"]` tokens (all of them: nothing is dropped), each with its
    `chunk_index` and the document's `num_chunks`."""
    if not sequence_length or not sequence_length.get("targets"):
        return dataset.map(lambda ex: {"targets": ex["targets"], "chunk_index": 0,
                                       "num_chunks": 1})
    length = int(sequence_length["targets"])

    def split(ex):
        tokens = ex["targets"]
        size = tf.size(tokens)
        n = (size + length - 1) // length
        starts = tf.range(n) * length
        # One ragged row per chunk, then unbatch: far cheaper than a nested dataset per document.
        chunks = tf.RaggedTensor.from_row_lengths(tokens, tf.minimum(length, size - starts))
        return {"targets": chunks, "chunk_index": tf.range(n), "num_chunks": tf.fill([n], n)}

    return dataset.map(split, num_parallel_calls=tf.data.AUTOTUNE).unbatch()


def output_features(vocabulary: seqio.Vocabulary) -> dict[str, seqio.Feature]:
    return {"targets": seqio.Feature(vocabulary, add_eos=True, dtype=tf.int32)}


def _file_source(name: str, pattern: str, max_bad_fraction: float) -> RecordSource:
    return RecordSource(
        name, list_shards=lambda: records.expand_pattern(pattern),
        read=lambda shard: records.read_shard(shard, max_bad_fraction),
        shard_bytes=lambda shard: tf.io.gfile.stat(shard).length)


def _stdlib_shard_files(shard: str) -> list[str]:
    index = int(shard.split("-")[1])
    return stdlib_source.stdlib_files()[index::STDLIB_SHARDS]


def _stdlib_source() -> RecordSource:
    root = stdlib_source.stdlib_dir()
    return RecordSource(
        "embedded_stack",
        list_shards=lambda: [f"stdlib-{i:05d}-of-{STDLIB_SHARDS:05d}" for i in range(STDLIB_SHARDS)],
        read=lambda shard: map(stdlib_source.stdlib_record, _stdlib_shard_files(shard)),
        shard_bytes=lambda shard: sum(os.path.getsize(os.path.join(root, f))
                                      for f in _stdlib_shard_files(shard)))


def _source(source: str, patterns: Mapping[str, str], max_bad_fraction: float) -> RecordSource:
    if source == "embedded_stack":
        return _stdlib_source()
    if source.startswith("embedded_"):
        return _file_source(source, EMBEDDED_SOURCES[source[len("embedded_"):]], max_bad_fraction)
    pattern = patterns.get(source, "")
    if not pattern:
        raise ValueError(f"no shards configured for source {source!r}: set "
                         f"--config.data.sources.{source}=PATTERN (a file, directory or glob, "
                         "local or gs://)")
    return _file_source(source, pattern, max_bad_fraction)


def task_names(mixture: str, vocabulary: str = "", sources: Mapping[str, str] | None = None,
               max_bad_fraction: float = MAX_BAD_FRACTION) -> dict[str, str]:
    """Registered Task name for each source of `mixture` under this configuration."""
    if mixture not in MIXTURES:
        raise ValueError(f"unknown mixture {mixture!r}; known: {sorted(MIXTURES)}")
    sources = sources or {}
    names = {}
    for source in MIXTURES[mixture]:
        key = [vocabulary, str(max_bad_fraction)] + ([] if source.startswith("embedded_")
                                                      else [sources.get(source, "")])
        default = not vocabulary and max_bad_fraction == MAX_BAD_FRACTION and source.startswith("embedded_")
        suffix = "" if default else "_" + hashlib.sha1("\0".join(key).encode()).hexdigest()[:8]
        names[source] = f"phi1_{source}{suffix}"
    return names


def register_task(name: str, source: str, vocabulary: str = "",
                  sources: Mapping[str, str] | None = None,
                  max_bad_fraction: float = MAX_BAD_FRACTION) -> seqio.Task:
    """Registers (once) and returns the Task for `source` (see the module docstring)."""
    if name in seqio.TaskRegistry.names():
        return seqio.TaskRegistry.get(name)
    return seqio.TaskRegistry.add(
        name,
        source=_source(source, sources or {}, max_bad_fraction),
        preprocessors=[_text_to_targets, seqio.preprocessors.tokenize,
                       seqio.CacheDatasetPlaceholder(),
                       seqio.preprocessors.append_eos, chunk_tokens],
        output_features=output_features(vocabularies.load_vocabulary(vocabulary)),
    )


@functools.lru_cache(maxsize=None)  # a Task's name fixes its shards and vocabulary
def estimated_tokens(task: seqio.Task) -> float:
    """Shard bytes times the tokens per byte of the first `_RATE_SAMPLE_BYTES` of text."""
    source: RecordSource = task.source
    sample, size = [], 0
    for shard in source.shards:
        for record in source.records(shard, "train"):
            sample.append(record["text"][:_RATE_SAMPLE_BYTES])
            size += len(sample[-1].encode("utf-8"))
            if size >= _RATE_SAMPLE_BYTES:
                break
        if size >= _RATE_SAMPLE_BYTES:
            break
    if not size:
        raise records.EmptySourceError(f"source {source.name!r} has no train records")
    vocab = task.output_features["targets"].vocabulary
    tokens = sum(len(vocab.encode(text)) for text in sample)
    return sum(source.shard_bytes(s) for s in source.shards) * tokens / size


def register_mixture(mixture: str, vocabulary: str = "", sources: Mapping[str, str] | None = None,
                     rates: Mapping[str, float] | None = None,
                     max_bad_fraction: float = MAX_BAD_FRACTION) -> seqio.Mixture:
    """Registers the Tasks of `mixture` and the Mixture itself (named like its Tasks: plain for the
    default configuration, suffixed otherwise) and returns the Mixture. `rates` maps source names
    to rates; sources not in it get `estimated_tokens`; rate 0 leaves a source out."""
    rates = dict(rates or {})
    unknown = set(rates) - set(MIXTURES.get(mixture, ()))
    if unknown:
        raise ValueError(f"mixture {mixture!r} has no sources {sorted(unknown)}")
    names = task_names(mixture, vocabulary, sources, max_bad_fraction)
    tasks = [(names[s], s) for s in MIXTURES[mixture] if rates.get(s, 1.0) > 0]
    if not tasks:
        raise ValueError(f"mixture {mixture!r}: every source has rate 0")
    rate_key = ",".join(f"{s}={rates[s]}" for s in sorted(rates))
    suffix = "" if all(n == f"phi1_{s}" for s, n in names.items()) and not rates else (
        "_" + hashlib.sha1("\0".join(sorted(names.values()) + [rate_key]).encode()).hexdigest()[:8])
    name = mixture + suffix
    if name in seqio.MixtureRegistry.names():
        return seqio.MixtureRegistry.get(name)
    for task_name, source in tasks:
        register_task(task_name, source, vocabulary, sources, max_bad_fraction)
    return seqio.MixtureRegistry.add(
        name, [(task_name, rates[s] if s in rates else estimated_tokens)
               for task_name, s in tasks])


for _mixture in (name for name, parts in MIXTURES.items() if all(p.startswith("embedded_") for p in parts)):
    register_mixture(_mixture)
