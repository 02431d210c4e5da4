"""The training data interface (data_pipeline.seqio_data.loader) on record shards of real code: packed layout,
nothing lost or truncated, determinism, per-host shards, cheap exact resume, mixture rates, the
embedded mixtures, and clear errors."""

import json

import ml_collections
import numpy as np
import pytest
import seqio
import tensorflow as tf

from data_pipeline import records, stdlib_source
from data_pipeline.seqio_data import loader, tasks, vocabularies

SEQ_LEN = 128


@pytest.fixture(scope="module")
def shard_dirs(tmp_path_factory):
    """Stack-like shards from the standard library (pieces of up to 1500 characters, 4 shards);
    the embedded textbook and exercises stand in for textbook and StackOverflow (2 shards each)."""
    root = tmp_path_factory.mktemp("shards")
    stack = []
    for f in stdlib_source.stdlib_files()[::12][:150]:
        text = stdlib_source.stdlib_record(f)["text"]
        stack += [{"id": f"{f}#{k}", "text": text[k:k + 1500], "source": "stack", "meta": {}}
                  for k in range(0, min(len(text), 6000), 1500)]
    records.write_shards(str(root / "stack"), stack, 4)
    for source in ("textbook", "exercises"):
        records.write_shards(str(root / source),
                             list(records.read_records(tasks.EMBEDDED_SOURCES[source])), 2)
    return {"stack": str(root / "stack"), "textbook": str(root / "textbook"),
            "stackoverflow": str(root / "exercises")}


def _config(shard_dirs, mixture="code_textbook", **extra):
    return ml_collections.ConfigDict(dict(mixture=mixture, vocabulary="", eval_split="validation",
                                          cache_dir="", sources=dict(shard_dirs), **extra))


def _take(iterator, n):
    return [next(iterator) for _ in range(n)]


def _segments(batches):
    """Every segment's target tokens, in order."""
    out = []
    for batch in batches:
        for row_t, row_s in zip(batch["decoder_target_tokens"], batch["decoder_segment_ids"]):
            for seg in range(1, row_s.max() + 1):
                out.append(row_t[row_s == seg])
    return out


def _document_stream(source_records, split):
    vocab = vocabularies.load_vocabulary("")
    texts = [r["text"] for r in source_records if tasks.split_of(r["id"]) == split]
    return np.concatenate([np.zeros(0, np.int32)] + [np.append(ids, vocab.eos_id)
                                                     for ids in vocab.encode_batch(texts)])


def test_batches_have_the_packed_layout(shard_dirs):
    it = loader.make_train_iterator(_config(shard_dirs), seq_len=SEQ_LEN, batch_size=4, seed=0)
    for batch in _take(it, 6):
        assert sorted(batch) == sorted(loader.packing.FEATURE_KEYS)
        for v in batch.values():
            assert v.shape == (4, SEQ_LEN) and v.dtype == np.int32
        seg, pos = batch["decoder_segment_ids"], batch["decoder_positions"]
        tgt, inp = batch["decoder_target_tokens"], batch["decoder_input_tokens"]
        assert (seg[:, 0] == 1).all() and (np.diff(seg, axis=1) >= 0).all()
        assert (seg > 0).all(), "training rows are filled completely"
        starts = np.concatenate([np.ones((4, 1), bool), np.diff(seg, axis=1) != 0], axis=1)
        assert ((pos == 0) == starts).all()
        assert (pos[:, 1:][~starts[:, 1:]] == pos[:, :-1][~starts[:, 1:]] + 1).all()
        assert (inp[starts] == 0).all()
        assert (inp[:, 1:][~starts[:, 1:]] == tgt[:, :-1][~starts[:, 1:]]).all()
        assert (batch["decoder_loss_weights"] == 1).all()


def test_one_epoch_is_every_document_whole_in_shard_order(shard_dirs):
    """Single-Task mixture: the segments of the first batches are exactly the documents (+ EOS)
    of the host's shards in the epoch's shard order, split into pieces of <= SEQ_LEN."""
    config = _config(shard_dirs, mixture="code_exercises")
    config.sources = {"exercises": shard_dirs["stack"]}
    it = loader.make_train_iterator(config, seq_len=SEQ_LEN, batch_size=8, seed=5)
    shards = records.expand_pattern(shard_dirs["stack"])
    order = tasks.unit_order(len(shards), seed=5, epoch=0)
    expected = np.concatenate([_document_stream(records.read_shard(shards[i]), "train")
                               for i in order])
    pieces = _segments(_take(it, len(expected) // (8 * SEQ_LEN)))
    got = np.concatenate(pieces)
    assert max(map(len, pieces)) <= SEQ_LEN
    np.testing.assert_array_equal(got, expected[:len(got)])


def test_eval_split_is_finite_and_complete(shard_dirs):
    config = _config(shard_dirs, mixture="code_exercises")
    config.sources = {"exercises": shard_dirs["stack"]}
    batches = list(loader.make_train_iterator(config, seq_len=SEQ_LEN, batch_size=4,
                                              split="validation"))
    expected = np.concatenate([_document_stream(records.read_shard(p), "validation")
                               for p in records.expand_pattern(shard_dirs["stack"])])
    assert len(expected) > 1000 and len(batches) >= len(expected) / (4 * SEQ_LEN)
    np.testing.assert_array_equal(np.concatenate(_segments(batches)), expected)
    last = batches[-1]
    assert (last["decoder_loss_weights"] == (last["decoder_segment_ids"] > 0)).all()


def test_same_seed_same_batches_other_seed_other_batches(shard_dirs):
    make = lambda seed: loader.make_train_iterator(_config(shard_dirs), seq_len=SEQ_LEN,
                                                   batch_size=2, seed=seed)
    a, b, c = _take(make(1), 5), _take(make(1), 5), _take(make(2), 5)
    assert all((x[k] == y[k]).all() for x, y in zip(a, b) for k in x)
    assert any((x["decoder_target_tokens"] != z["decoder_target_tokens"]).any()
               for x, z in zip(a, c))


def test_resume_continues_exactly_and_does_not_retokenize(shard_dirs, monkeypatch):
    config = _config(shard_dirs)
    it = loader.make_train_iterator(config, seq_len=SEQ_LEN, batch_size=4, seed=3)
    _take(it, 40)
    state = json.loads(json.dumps(it.get_state()))
    assert len(json.dumps(state)) < 2000
    expected = _take(it, 5)

    vocab = vocabularies.load_vocabulary("")
    encoded = []
    record = lambda text: encoded.append(text) or vocab._encode(text)
    # Route in-graph tokenization through Python so every tokenized document is seen.
    monkeypatch.setattr(vocab, "_encode_tf", lambda s: vocabularies._numpy_encode_tf(record, s))
    resumed = loader.make_train_iterator(config, seq_len=SEQ_LEN, batch_size=4, seed=3)
    resumed.set_state(state)
    for want, got in zip(expected, _take(resumed, 5)):
        for k in want:
            np.testing.assert_array_equal(want[k], got[k])
    # No document that the saved run had finished is tokenized again.
    finished = set()
    for stream in resumed.streams:
        pos = state["tasks"][stream.task.name]
        order = tasks.unit_order(len(stream.units), 3, pos["epoch"])
        for n, unit in enumerate(order[:pos["unit"] + 1]):
            docs = list(stream.source.records(stream.source.shards[stream.units[unit][0]], "train"))
            finished.update(r["text"] for r in docs[:pos["records"] if n == pos["unit"] else None])
    finished = {t for t in finished if len(t) > 100}
    assert len(finished) > 10 and encoded and not finished.intersection(encoded)

    other = loader.make_train_iterator(config, seq_len=SEQ_LEN, batch_size=4, seed=4)
    with pytest.raises(ValueError, match="seed"):
        other.set_state(state)


def test_hosts_read_their_own_shards(shard_dirs):
    config = _config(shard_dirs, mixture="code_exercises")
    config.sources = {"exercises": shard_dirs["stack"]}
    two = [loader.make_train_iterator(config, seq_len=SEQ_LEN, batch_size=2, shard_index=i,
                                      shard_count=2) for i in range(2)]
    units = [set(u for u in it.streams[0].units) for it in two]
    assert units[0].isdisjoint(units[1]) and {s for s, _, _ in units[0] | units[1]} == {0, 1, 2, 3}
    # More hosts than shards: each host reads every shard, one record in shard_count.
    host = loader.make_train_iterator(config, seq_len=SEQ_LEN, batch_size=2, shard_index=5,
                                      shard_count=8, seed=9)
    shards = records.expand_pattern(shard_dirs["stack"])
    expected = np.concatenate([_document_stream(
        [r for r in records.read_shard(shards[i]) if tasks.split_of(r["id"]) == "train"][5::8],
        "train") for i in tasks.unit_order(len(shards), seed=9, epoch=0)])
    got = np.concatenate(_segments(_take(host, len(expected) // (2 * SEQ_LEN))))
    np.testing.assert_array_equal(got, expected[:len(got)])


def test_default_rates_follow_tokens_and_can_be_overridden(shard_dirs):
    mixture = tasks.register_mixture("code_textbook", sources=shard_dirs)
    rates = {t.name: mixture.get_rate(t) for t in mixture.tasks}
    vocab = vocabularies.load_vocabulary("")
    true_tokens = {}
    for source in ("stack", "textbook"):
        texts = [r["text"] for r in records.read_records(shard_dirs[source])]
        true_tokens[source] = sum(map(len, vocab.encode_batch(texts)))
    names = tasks.task_names("code_textbook", "", shard_dirs)
    estimated_ratio = rates[names["stack"]] / rates[names["textbook"]]
    true_ratio = true_tokens["stack"] / true_tokens["textbook"]
    assert 0.7 < estimated_ratio / true_ratio < 1.4

    config = _config(shard_dirs, mixture_rates={"stack": 1.0, "textbook": 3.0,
                                                "stackoverflow": 0.0})
    it = loader.make_train_iterator(config, seq_len=SEQ_LEN, batch_size=2)
    assert [s.task.name for s in it.streams] == [names["stack"], names["textbook"]]
    np.testing.assert_allclose(it.probabilities, [0.25, 0.75])
    draws = [it._draw() for _ in range(4000)]
    assert abs(np.mean(draws) - 0.75) < 0.03
    with pytest.raises(ValueError, match="no sources"):
        tasks.register_mixture("code_textbook", sources=shard_dirs, rates={"exercises": 1.0})


def test_embedded_mixtures_and_missing_sources():
    info = loader.vocab_info(ml_collections.ConfigDict(dict(vocabulary="")))
    assert (info.vocab_size, info.eos_id, info.pad_id) == (4096, 1, 0)
    for mixture in ("embedded_code_textbook", "embedded_code_exercises"):
        config = ml_collections.ConfigDict(dict(mixture=mixture, vocabulary="",
                                                eval_split="validation", cache_dir=""))
        batch = next(loader.make_train_iterator(config, seq_len=64, batch_size=2))
        assert batch["decoder_target_tokens"].shape == (2, 64)
    exercises = seqio.get_mixture_or_task("embedded_code_exercises").tasks[0]
    text = loader.vocabulary(config).decode(
        next(iter(exercises.get_dataset({"targets": 4096}, shuffle=False)))["targets"].numpy())
    assert text.startswith("def ")
    config = ml_collections.ConfigDict(dict(mixture="code_textbook", vocabulary="",
                                            eval_split="validation", cache_dir=""))
    with pytest.raises(ValueError, match="config.data.sources.stack"):
        loader.make_train_iterator(config, seq_len=64, batch_size=2)
    config.mixture = "embedded_code_exercises"
    with pytest.raises(ValueError, match="unknown split 'test'"):
        loader.make_train_iterator(config, seq_len=64, batch_size=2, split="test")
    config.mixture = "nope"
    with pytest.raises(ValueError, match="unknown mixture"):
        loader.make_train_iterator(config, seq_len=64, batch_size=2)


def test_packing_matches_seqio_lm_feature_converter(shard_dirs):
    it = loader.make_train_iterator(_config(shard_dirs), seq_len=SEQ_LEN, batch_size=1, seed=7)
    batch = next(it)
    segments = _segments([batch])
    ds = tf.data.Dataset.from_generator(
        lambda: ({"targets": s} for s in segments),
        output_signature={"targets": tf.TensorSpec([None], tf.int32)})
    converter = seqio.LMFeatureConverter(pack=True)
    packed = next(converter(ds, {"targets": SEQ_LEN}).as_numpy_iterator())
    for key in loader.packing.FEATURE_KEYS:
        np.testing.assert_array_equal(packed[key], batch[key][0], err_msg=key)


def test_malformed_shard_stops_training_with_file_and_line(tmp_path, shard_dirs):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "a", "text": "x = 1\n", "source": "stack"}) + "\n{oops\n")
    config = _config(shard_dirs, mixture="code_exercises")
    config.sources = {"exercises": str(bad)}
    with pytest.raises(Exception, match=f"{bad}:2"):
        next(loader.make_train_iterator(config, seq_len=SEQ_LEN, batch_size=1))


def test_small_sources_replay_later_epochs_from_memory_exactly(monkeypatch):
    """The embedded exercises (about 20k tokens) repeat every ~20 batches here: epochs replayed
    from memory, and a resume in the middle of one, match a run that re-reads every epoch."""
    config = ml_collections.ConfigDict(dict(mixture="embedded_code_exercises", vocabulary="",
                                            eval_split="validation", cache_dir=""))
    make = lambda: loader.make_train_iterator(config, seq_len=SEQ_LEN, batch_size=8, seed=2)
    remembering = make()
    first = _take(remembering, 45)
    state = remembering.get_state()
    later = _take(remembering, 20)
    assert state["tasks"]["phi1_embedded_exercises"]["epoch"] >= 2
    assert remembering.streams[0]._memory
    monkeypatch.setattr(loader, "_MEMORY_BUDGET", 0)
    rereading = make()
    for want, got in zip(first + later, _take(rereading, 65)):
        np.testing.assert_array_equal(want["decoder_target_tokens"], got["decoder_target_tokens"])
    assert not rereading.streams[0]._memory
    resumed = make()
    resumed.set_state(state)
    for want, got in zip(later, _take(resumed, 20)):
        np.testing.assert_array_equal(want["decoder_target_tokens"], got["decoder_target_tokens"])
    # Rewinding an iterator that holds the epoch in memory replays from memory, skipping
    # the documents already done.
    remembering.set_state(state)
    for want, got in zip(later, _take(remembering, 20)):
        np.testing.assert_array_equal(want["decoder_target_tokens"], got["decoder_target_tokens"])
