"""The training data interface: a seqio Mixture -> packed, resumable per-host batches (the
"per-host slice of the global batch" step of DESIGN.md's data flow). Training reads data only
through this module.

API
---
    make_train_iterator(data_config, *, seq_len, batch_size, shard_index=0, shard_count=1,
                        seed=0, split="train") -> TrainIterator
    vocabulary(data_config) -> seqio.Vocabulary
    vocab_info(data_config) -> VocabInfo(vocab_size, eos_id, pad_id)   # pad_id is always 0

`data_config` is `config.data`: `mixture` (a name in `tasks.MIXTURES`), `vocabulary` ("" = the
shipped SentencePiece model, or a `.model` / `tokenizer.json` path), `eval_split`, `cache_dir`
(where `python -m data_pipeline.seqio_data.cache` wrote the Beam cache; "" = tokenize on the fly). Optional
fields, read with defaults when absent: `sources` (dict source -> shard pattern, for the
non-embedded mixtures), `mixture_rates` (dict source -> rate), `max_bad_fraction`
(`sources.MAX_BAD_FRACTION`).

A `TrainIterator` yields dicts of int32 numpy arrays `[batch_size, seq_len]` with the five keys of
`packing.FEATURE_KEYS`. `batch_size` is this host's share of the global batch; host `shard_index`
of `shard_count` reads only its own shards (`tasks.host_units`).

How batches are made: each Task of the mixture is a stream of chunks (documents + EOS, split into
pieces of at most `seq_len`; see tasks.py). Every time the previous chunk is used up, the next chunk
is taken from a Task drawn at random with the mixture's rates. Chunks fill rows back to back; a
chunk that does not fit in what is left of a row is split at the row's end and continues in the
next row as a new segment, so training rows have no padding and no token is dropped. Each epoch a
host reads its shards in an order fixed by (seed, epoch), each shard front to back: documents are
not shuffled inside a shard, so write shards in a shuffled order (the Beam stages do). Split
"train" repeats forever; any other split is read once, Task after Task, and its last batch is
padded with empty rows (segment id 0, loss weight 0).

Small shards (up to 64 MiB of tokens per Task stream in all) are kept in memory after their first
full read and replayed in later epochs; the replayed chunks are the ones tokenization produced, so
batches are unchanged.

Multi-host: call with `shard_index=jax.process_index(), shard_count=jax.process_count()` and the
per-host batch; each host's stream is deterministic on its own, so hosts need no coordination.

Resume: `get_state()` is a small JSON dict: how many mixture draws were made, the active Task, and
per Task (epoch, shard position, documents done in that shard, chunks done in the current
document, tokens done in the current chunk). `set_state` re-opens each stream at that position,
skipping whole shards and skipping already-read records *before* tokenization (seqio's
`preprocess_precache` runs after the skip), so resuming costs one re-tokenized document per Task,
not a replay of the run (tf.data reads ahead of that point, but only forward). Batches after
`set_state(s)` equal those the saving iterator produced after `get_state()` returned `s`.

Cache: when `cache_dir` holds a completed cache of a Task (one cache file per source shard, in
source order; see cache.py), its chunks are read from the cache instead of tokenizing, and give the
same batches.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Iterator, Mapping

import numpy as np
import seqio
import tensorflow as tf

from data_pipeline import records
from data_pipeline.seqio_data import packing, tasks, vocabularies
from data_pipeline.sources import MAX_BAD_FRACTION

STATE_VERSION = 1
# Mixture draws are made this many at a time from one seeded generator per block.
_DRAW_BLOCK = 4096
# Chunks fetched from tf.data per Python-side read: one eager get_next costs about as much as
# tokenizing a short document, so chunks come in batches.
_CHUNKS_PER_READ = 64
# Token bytes per Task stream that may be kept to replay small shards from memory.
_MEMORY_BUDGET = 64 << 20


@dataclasses.dataclass(frozen=True)
class VocabInfo:
    vocab_size: int
    eos_id: int
    pad_id: int = 0


def vocabulary(data_config) -> seqio.Vocabulary:
    return vocabularies.load_vocabulary(data_config.vocabulary)


def vocab_info(data_config) -> VocabInfo:
    vocab = vocabulary(data_config)
    return VocabInfo(vocab_size=vocab.vocab_size, eos_id=vocab.eos_id, pad_id=vocab.pad_id)


def _field(data_config, name: str, default: Any) -> Any:
    value = data_config.get(name, default) if hasattr(data_config, "get") else default
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    return default if value is None else value


def cached_task_dir(task: seqio.Task, cache_dir: str) -> str | None:
    """The completed cache of `task` under `cache_dir`, or None."""
    if not cache_dir:
        return None
    path = os.path.join(cache_dir, seqio.get_task_dir_from_name(task.name))
    return path if tf.io.gfile.exists(os.path.join(path, "COMPLETED")) else None


def _chunks(batches: tf.data.Dataset) -> Iterator[tuple[np.ndarray, bool]]:
    """(tokens, last chunk of its document) for each chunk of batches made by `ragged_batch`."""
    for batch in batches:
        tokens = batch["targets"].flat_values.numpy()
        splits = batch["targets"].row_splits.numpy()
        last = (batch["chunk_index"] == batch["num_chunks"] - 1).numpy()
        for i in range(len(last)):
            yield tokens[splits[i]:splits[i + 1]], bool(last[i])


class _TaskStream:
    """One Task's chunks for this host, with a position that can be saved and restored."""

    def __init__(self, task: seqio.Task, split: str, seq_len: int, shard_index: int,
                 shard_count: int, seed: int, repeat: bool, cache_dir: str):
        self.task, self.split, self.seq_len, self.seed, self.repeat = task, split, seq_len, seed, repeat
        self.source: tasks.RecordSource = task.source
        self.units = tasks.host_units(len(self.source.shards), shard_index, shard_count)
        self.cache = cached_task_dir(task, cache_dir)
        if self.cache:
            self._check_cache()
        self.pos = {"epoch": 0, "unit": 0, "records": 0, "chunk": 0, "offset": 0}
        self._chunks: Iterator[tuple[np.ndarray, bool]] | None = None
        self._from_start: dict[int, tf.data.Dataset] = {}
        self._memory: dict[int, list[tuple[np.ndarray, bool]]] = {}
        self._memory_bytes = 0
        self._current: np.ndarray | None = None
        self._last_in_record = False

    def _check_cache(self) -> None:
        num_files = len(tf.io.gfile.glob(seqio.get_cached_tfrecord_prefix(self.cache, self.split)
                                         + "-*-of-*"))
        if num_files != len(self.source.shards):
            raise ValueError(f"cache {self.cache} has {num_files} {self.split} files but the source "
                             f"has {len(self.source.shards)} shards: re-run data_pipeline.seqio_data.cache")

    def state(self) -> dict:
        return dict(self.pos)

    def restore(self, pos: Mapping[str, int]) -> None:
        self.pos = {k: int(pos[k]) for k in self.pos}
        self._chunks, self._current = None, None

    def _order(self) -> list[int]:
        if not self.repeat:
            return list(range(len(self.units)))
        return tasks.unit_order(len(self.units), self.seed, self.pos["epoch"])

    def _dataset(self, unit: int, skip: int) -> tf.data.Dataset:
        """Chunks of one reading unit after its first `skip` records (skipped before tokenizing)."""
        shard, index, count = self.units[unit]
        if self.cache:
            # seqio's reader of its cache layout, pointed at this cache explicitly (Task.cache_dir
            # would search seqio's global cache directories instead).
            cached = seqio.dataset_providers._CachedDataSource(self.cache, self.split)
            ds = cached.get_dataset(self.split, shuffle=False,
                                    shard_info=seqio.ShardInfo(shard, len(self.source.shards)))
            ds = ds.shard(count, index).skip(skip)
        else:
            ds = self.source.shard_dataset(self.source.shards[shard], self.split)
            ds = self.task.preprocess_precache(ds.shard(count, index).skip(skip))
        ds = self.task.preprocess_postcache(ds, {"targets": self.seq_len})
        return ds.ragged_batch(_CHUNKS_PER_READ).prefetch(tf.data.AUTOTUNE)

    def _open(self) -> Iterator[tuple[np.ndarray, bool]]:
        unit = self._order()[self.pos["unit"]]
        if unit in self._memory:
            chunks = iter(self._memory[unit])
            documents = 0
            while documents < self.pos["records"]:
                documents += next(chunks)[1]
        elif self.pos["records"]:
            chunks = _chunks(self._dataset(unit, self.pos["records"]))
        else:
            # Building a pipeline traces seqio's preprocessors (a noticeable fraction of a second);
            # a unit read from its start reuses the one built in an earlier epoch.
            if unit not in self._from_start:
                self._from_start[unit] = self._dataset(unit, 0)
            chunks = self._remember(unit, _chunks(self._from_start[unit]))
        for _ in range(self.pos["chunk"]):
            next(chunks)
        return chunks

    def _remember(self, unit: int, chunks: Iterator[tuple[np.ndarray, bool]]
                  ) -> Iterator[tuple[np.ndarray, bool]]:
        """Passes `chunks` through and, when the whole unit fits in what is left of
        `_MEMORY_BUDGET`, keeps it so later epochs replay it from memory (small sources such as
        the embedded data or a finetuning set repeat many times; the chunks are the same)."""
        kept: list | None = []
        size = 0
        for item in chunks:
            if kept is not None:
                size += item[0].nbytes
                if self._memory_bytes + size > _MEMORY_BUDGET:
                    kept = None
                else:
                    kept.append(item)
            yield item
        if kept is not None:
            self._memory[unit] = kept
            self._memory_bytes += size

    def _next_chunk(self) -> bool:
        """Loads the next chunk into `_current`; False at the end of a split read once."""
        empty_units = 0
        while True:
            if self._chunks is None:
                if self.pos["unit"] == len(self.units):
                    if not self.repeat:
                        return False
                    self.pos.update(epoch=self.pos["epoch"] + 1, unit=0)
                self._chunks = self._open()
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self.pos.update(unit=self.pos["unit"] + 1, records=0, chunk=0, offset=0)
                self._chunks = None
                empty_units += 1
                if empty_units > len(self.units) and self.repeat:
                    raise records.EmptySourceError(
                        f"Task {self.task.name}: this host's shards hold no {self.split!r} records")
                continue
            self._current, self._last_in_record = chunk
            return True

    def take(self, max_tokens: int) -> tuple[np.ndarray | None, bool]:
        """Up to `max_tokens` of the current chunk, and whether that finished the chunk.
        (None, True) when a split read once is exhausted."""
        if self._current is None and not self._next_chunk():
            return None, True
        start = self.pos["offset"]
        piece = self._current[start:start + max_tokens]
        self.pos["offset"] = start + len(piece)
        if self.pos["offset"] < len(self._current):
            return piece, False
        self._current = None
        if self._last_in_record:
            self.pos.update(records=self.pos["records"] + 1, chunk=0, offset=0)
        else:
            self.pos.update(chunk=self.pos["chunk"] + 1, offset=0)
        return piece, True


class TrainIterator:
    """Packed batches of one mixture for one host; see the module docstring."""

    def __init__(self, mixture: seqio.Mixture, *, seq_len: int, batch_size: int, shard_index: int,
                 shard_count: int, seed: int, split: str, cache_dir: str):
        if not 0 <= shard_index < shard_count:
            raise ValueError(f"shard_index {shard_index} not in [0, {shard_count})")
        self.mixture, self.seq_len, self.batch_size = mixture, seq_len, batch_size
        self.shard_index, self.shard_count, self.seed, self.split = (shard_index, shard_count,
                                                                     seed, split)
        self.repeat = split == "train"
        self.streams = [_TaskStream(t, split, seq_len, shard_index, shard_count, seed, self.repeat,
                                    cache_dir) for t in mixture.tasks]
        rates = np.array([mixture.get_rate(t) for t in mixture.tasks], np.float64)
        self.probabilities = rates / rates.sum()
        self.draws = 0
        self.active: int | None = None if self.repeat else 0
        self._block: tuple[int, np.ndarray] | None = None

    def _draw(self) -> int:
        block, index = divmod(self.draws, _DRAW_BLOCK)
        if self._block is None or self._block[0] != block:
            rng = np.random.default_rng([self.seed, self.shard_index, block])
            self._block = (block, rng.choice(len(self.streams), _DRAW_BLOCK, p=self.probabilities))
        self.draws += 1
        return int(self._block[1][index])

    def __iter__(self) -> "TrainIterator":
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        packer = packing.RowPacker(self.batch_size, self.seq_len)
        while not packer.full:
            if self.active is None:
                self.active = self._draw()
            piece, done = self.streams[self.active].take(packer.space)
            if piece is None:  # a split read once: go on with the next Task, or stop
                if self.active + 1 == len(self.streams):
                    break
                self.active += 1
                continue
            packer.add(piece)
            if done and self.repeat:
                self.active = None
        if packer.empty:
            raise StopIteration
        return packer.features()

    def get_state(self) -> dict:
        return {"version": STATE_VERSION, "mixture": self.mixture.name, "split": self.split,
                "seq_len": self.seq_len, "shard_index": self.shard_index,
                "shard_count": self.shard_count, "seed": self.seed, "draws": self.draws,
                "active": self.active,
                "tasks": {s.task.name: s.state() for s in self.streams}}

    def set_state(self, state: Mapping[str, Any]) -> None:
        expected = {"version": STATE_VERSION, "mixture": self.mixture.name, "split": self.split,
                    "seq_len": self.seq_len, "shard_index": self.shard_index,
                    "shard_count": self.shard_count, "seed": self.seed}
        wrong = {k: (state.get(k), v) for k, v in expected.items() if state.get(k) != v}
        if wrong:
            raise ValueError(f"data iterator state is for another configuration (saved, now): {wrong}")
        missing = {s.task.name for s in self.streams} - set(state["tasks"])
        if missing:
            raise ValueError(f"data iterator state has no position for Tasks {sorted(missing)}")
        for stream in self.streams:
            stream.restore(state["tasks"][stream.task.name])
        self.draws, self.active = int(state["draws"]), state["active"]


def make_train_iterator(data_config, *, seq_len: int, batch_size: int, shard_index: int = 0,
                        shard_count: int = 1, seed: int = 0, split: str = "train") -> TrainIterator:
    """Packed batches of `data_config.mixture` for host `shard_index` of `shard_count`."""
    if split not in tasks.SPLITS:
        raise ValueError(f"unknown split {split!r}; the Tasks have {tasks.SPLITS}")
    mixture = tasks.register_mixture(
        data_config.mixture, vocabulary=data_config.vocabulary,
        sources=_field(data_config, "sources", {}),
        rates={source: rate for source, rate in _field(data_config, "mixture_rates", {}).items()
               if rate is not None},
        max_bad_fraction=float(_field(data_config, "max_bad_fraction", MAX_BAD_FRACTION)))
    return TrainIterator(mixture, seq_len=seq_len, batch_size=batch_size, shard_index=shard_index,
                         shard_count=shard_count, seed=seed, split=split,
                         cache_dir=_field(data_config, "cache_dir", ""))
