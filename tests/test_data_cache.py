"""The Beam offline cache (DirectRunner): training batches read from the cache equal those
computed on the fly, resume works on the cache, and a stale cache is refused."""

import json
import os

import ml_collections
import numpy as np
import pytest
import seqio

from data_pipeline import records, stdlib_source
from data_pipeline.seqio_data import cache, loader, tasks


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    stack = [dict(stdlib_source.stdlib_record(f), source="stack")
             for f in stdlib_source.stdlib_files()[5::25][:60]]
    records.write_shards(str(root / "stack"), stack, 3)
    records.write_shards(str(root / "textbook"),
                         list(records.read_records(tasks.EMBEDDED_SOURCES["textbook"])), 2,
                         suffix="tfrecord")
    sources = {"stack": str(root / "stack"), "textbook": str(root / "textbook"),
               "stackoverflow": str(root / "textbook")}
    out = str(root / "out")
    cache.main(["--mixture", "code_textbook", "--out", out, "--runner=DirectRunner"]
               + [f"--source={k}={v}" for k, v in sources.items()])
    return sources, out


def _config(sources, cache_dir):
    return ml_collections.ConfigDict(dict(mixture="code_textbook", vocabulary="",
                                          eval_split="validation", cache_dir=cache_dir,
                                          sources=sources))


def test_cache_layout_and_stats(cached):
    sources, out = cached
    for source, name in tasks.task_names("code_textbook", "", sources).items():
        task_dir = os.path.join(out, seqio.get_task_dir_from_name(name))
        assert os.path.exists(os.path.join(task_dir, "COMPLETED"))
        with open(seqio.get_cached_stats_path(task_dir, "train")) as f:
            stats = json.load(f)
        task = seqio.get_mixture_or_task(name)
        train_docs = sum(1 for s in task.source.shards for _ in task.source.records(s, "train"))
        assert stats["examples"] == train_docs


def test_batches_from_cache_equal_batches_on_the_fly(cached):
    sources, out = cached
    fly = loader.make_train_iterator(_config(sources, ""), seq_len=96, batch_size=4, seed=11)
    from_cache = loader.make_train_iterator(_config(sources, out), seq_len=96, batch_size=4,
                                            seed=11)
    assert all(s.cache for s in from_cache.streams) and not any(s.cache for s in fly.streams)
    for _ in range(60):
        a, b = next(fly), next(from_cache)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    # Resuming the on-the-fly run from the cache continues identically too.
    state = fly.get_state()
    resumed = loader.make_train_iterator(_config(sources, out), seq_len=96, batch_size=4, seed=11)
    resumed.set_state(state)
    for _ in range(5):
        a, b = next(fly), next(resumed)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    ev_fly = list(loader.make_train_iterator(_config(sources, ""), seq_len=96, batch_size=4,
                                             split="validation"))
    ev_cache = list(loader.make_train_iterator(_config(sources, out), seq_len=96, batch_size=4,
                                               split="validation"))
    assert len(ev_fly) == len(ev_cache) > 0
    for a, b in zip(ev_fly, ev_cache):
        np.testing.assert_array_equal(a["decoder_target_tokens"], b["decoder_target_tokens"])


def test_stale_cache_is_refused(cached, tmp_path):
    sources, out = cached
    # A cache missing one source shard's file no longer lines up with the source.
    name = tasks.task_names("code_textbook", "", sources)["stack"]
    task_dir = os.path.join(out, seqio.get_task_dir_from_name(name))
    victim = sorted(f for f in os.listdir(task_dir) if f.startswith("train.tfrecord"))[-1]
    os.rename(os.path.join(task_dir, victim), tmp_path / victim)
    try:
        with pytest.raises(ValueError, match="re-run data_pipeline.seqio_data.cache"):
            loader.make_train_iterator(_config(sources, out), seq_len=96, batch_size=4)
    finally:
        os.rename(tmp_path / victim, os.path.join(task_dir, victim))
