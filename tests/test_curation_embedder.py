"""The shared embedder: the packaged all-MiniLM-L6-v2 gives unit-norm rows equal to
sentence-transformers' own encode, long texts are pooled over their windows, and a tiny phi1_jax
checkpoint embeds as the mean of the last hidden states that Hugging Face's PhiForCausalLM computes
for the same weights; `checkpoint:PATH` is found through setup.py's entry point, not an import."""

from __future__ import annotations

import importlib.metadata
import json

import numpy as np
import pytest

from data_pipeline import embedder as embedder_module
from data_pipeline.embedder import ENTRY_POINT_GROUP, MAX_TOKENS_PER_TEXT, Embedder, load_embedder
from data_pipeline.stdlib_source import stdlib_record
from entry_points_testlib import REPO, declare_checkout_entry_points, declared_entry_points


@pytest.fixture(scope="module")
def default_embedder():
    return load_embedder("default")


def test_default_matches_sentence_transformers_encode(default_embedder):
    texts = [stdlib_record("bisect.py")["text"][:400], "def add(a, b):\n    return a + b\n", ""]
    vectors = default_embedder.embed(texts)
    assert vectors.dtype == np.float32 and vectors.shape == (3, default_embedder.dim) == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    reference = default_embedder._model.encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(vectors, reference, atol=1e-5)
    assert default_embedder.name.startswith("sentence-transformers:all-MiniLM-L6-v2@")


def test_long_text_is_the_mean_of_its_windows(default_embedder):
    # One BERT token per word: 254 words fill a 256-token window with [CLS] and [SEP].
    words = default_embedder.window - 2
    first, second = "alpha " * words, "omega " * words
    pooled = default_embedder.embed([first + second])[0]
    halves = default_embedder._model.encode([first, second], normalize_embeddings=True)
    expected = halves.sum(0) / np.linalg.norm(halves.sum(0))
    np.testing.assert_allclose(pooled, expected, atol=1e-5)
    assert float(pooled @ halves[0]) < 0.999  # the second window counted


def test_only_the_opening_is_embedded_and_batches_do_not_matter(default_embedder):
    text = stdlib_record("heapq.py")["text"]
    assert len(text) > MAX_TOKENS_PER_TEXT * 4
    alone = default_embedder.embed([text])
    padded_tail = default_embedder.embed([text + "\n# tail\n" * 20000, "x = 1"], batch_size=3)
    np.testing.assert_allclose(padded_tail[0], alone[0], atol=1e-5)


def test_refuses_what_it_cannot_load_locally(tmp_path):
    with pytest.raises(ValueError, match="not downloaded"):
        load_embedder("sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(ValueError, match="no modules.json"):
        load_embedder(str(tmp_path))
    with pytest.raises(TypeError, match="sequence of texts"):
        load_embedder("default").embed("one string")


def test_setup_declares_the_checkpoint_embedder(tmp_path, monkeypatch):
    assert declared_entry_points()[ENTRY_POINT_GROUP] == [
        "checkpoint = phi1_jax.checkpoint_embedder:CheckpointEmbedder"]
    declare_checkout_entry_points(tmp_path, monkeypatch)
    factory = embedder_module.embedder_factories()["checkpoint"].load()
    from phi1_jax.checkpoint_embedder import CheckpointEmbedder

    assert factory is CheckpointEmbedder and issubclass(factory, Embedder)


def test_an_install_of_this_checkout_has_the_entry_points():
    """What `make test` installs (an editable install of this checkout) carries setup.py's entry
    points; other installs (another worktree's, or none) are not this checkout's to check."""
    for dist in importlib.metadata.distributions(name="phi1-jax"):
        url = json.loads(dist.read_text("direct_url.json") or "{}").get("url", "")
        if url.rstrip("/") == REPO.as_uri():
            installed = {ep.name: ep.value for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP}
            declared = dict(e.replace(" ", "").split("=") for e in declared_entry_points()[ENTRY_POINT_GROUP])
            assert installed == declared, "reinstall: pip install -e . (setup.py's entry points changed)"
            return
    pytest.skip("phi1-jax is not installed from this checkout")


def test_unknown_prefix_names_the_known_ones(tmp_path, monkeypatch):
    declare_checkout_entry_points(tmp_path, monkeypatch)
    with pytest.raises(ValueError, match=r"unknown prefix 'nosuch'.*'checkpoint:\.\.\.'"):
        load_embedder("nosuch:x")
    # Without the package's entry points (not installed), the error says so.
    monkeypatch.setattr(embedder_module, "embedder_factories", lambda: {})
    with pytest.raises(ValueError, match=r"unknown prefix 'checkpoint'.*none.*pip install -e"):
        load_embedder("checkpoint:/nowhere")
    # A directory whose name has a colon is still a directory, not a prefix.
    odd = tmp_path / "model:v1"
    odd.mkdir()
    with pytest.raises(ValueError, match="no modules.json"):
        load_embedder(str(odd))


def test_checkpoint_embedder_is_the_mean_of_hf_last_hidden_states(tmp_path, monkeypatch):
    import jax
    import torch
    from transformers import PhiForCausalLM

    from data_pipeline.seqio_data.vocabularies import DEFAULT_SPM_PATH, load_vocabulary
    from phi1_jax import PhiConfig, init_params
    from phi1_jax.checkpoint import save_model, vocabulary_to_carry
    from phi1_jax.convert import to_hf

    # 32 positions: the 100-token text below spans four windows.
    config = PhiConfig(vocab_size=4096, hidden_size=64, intermediate_size=256, num_layers=2, num_heads=4,
                       max_position_embeddings=32)
    params = init_params(config, jax.random.key(3))
    save_model(str(tmp_path / "ckpt"), config, params, vocabulary=vocabulary_to_carry(DEFAULT_SPM_PATH))
    declare_checkout_entry_points(tmp_path, monkeypatch)
    embedder = load_embedder(f"checkpoint:{tmp_path / 'ckpt'}")
    assert embedder.dim == 64 and embedder.window == 32 and embedder.name.startswith("checkpoint:ckpt@")

    text = stdlib_record("bisect.py")["text"][:600]
    ids = list(load_vocabulary(DEFAULT_SPM_PATH).encode(text))
    assert len(ids) > 3 * 32
    to_hf(config, params, str(tmp_path / "hf"))
    hf = PhiForCausalLM.from_pretrained(str(tmp_path / "hf")).eval()
    with torch.inference_mode():
        states = [hf(torch.tensor([ids[i:i + 32]]), output_hidden_states=True).hidden_states[-1][0]
                  for i in range(0, len(ids), 32)]
    mean = torch.cat(states).mean(0).numpy()
    vector = embedder.embed([text, "x = 1"])[0]
    np.testing.assert_allclose(vector, mean / np.linalg.norm(mean), atol=1e-4)
