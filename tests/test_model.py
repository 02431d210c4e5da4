"""The Flax model on its own: phi-1's exact size, packed documents, the KV cache (a call that fills
it included), the two attention implementations, the layer layouts, and the sampler's EOS,
reproducibility and refusals of bad requests."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from phi1_jax import Phi, PhiConfig, init_cache, init_params
from phi1_jax.default_config import load_config_file
from phi1_jax.layer_stacking import stack_layers
from phi1_jax.sampling import generate
from phi1_jax.sharding import make_mesh

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = PhiConfig(vocab_size=97, hidden_size=64, intermediate_size=160, num_layers=2, num_heads=4,
                 initializer_range=0.2)


def _model_config(name: str) -> PhiConfig:
    return PhiConfig.from_dict(load_config_file(os.path.join(ROOT, "configs", f"{name}.py")).model)


def _count(config: PhiConfig) -> int:
    shapes = jax.eval_shape(lambda: init_params(config, jax.random.key(0)))
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes))


def test_phi1_has_exactly_the_papers_parameter_count():
    config = _model_config("phi1")
    assert (config.num_layers, config.hidden_size, config.intermediate_size, config.num_heads,
            config.head_size, config.rotary_dim, config.vocab_size) == (24, 2048, 8192, 32, 64, 32, 51200)
    assert _count(config) == config.num_params() == 1_418_270_720


def test_phi1_small_shape():
    config = _model_config("phi1_small")
    assert (config.num_layers, config.hidden_size, config.intermediate_size, config.num_heads,
            config.head_size) == (20, 1024, 4096, 16, 64)
    assert _count(config) == config.num_params()


def test_params_carry_logical_axis_names():
    boxed = init_params(TINY.replace(scan_layers=True), jax.random.key(0), boxed=True)
    names = jax.tree.map(lambda x: x.names, boxed, is_leaf=lambda x: hasattr(x, "names"))
    assert names["embed_tokens"]["embedding"] == ("vocab", "embed")
    assert names["layers"]["self_attn"]["q_proj"]["kernel"] == ("layers", "embed", "heads", "kv")
    assert names["layers"]["self_attn"]["dense"]["kernel"] == ("layers", "heads", "kv", "embed")
    assert names["layers"]["mlp"]["fc1"]["kernel"] == ("layers", "embed", "mlp")
    assert names["lm_head"]["kernel"] == ("embed", "vocab")


@pytest.fixture(scope="module")
def params():
    return init_params(TINY, jax.random.key(0))


def _forward(config, params, ids, **kwargs):
    return np.asarray(Phi(config).apply({"params": params}, jnp.asarray(ids), **kwargs))


@pytest.mark.parametrize("attention", ["xla", "dot_product"])
def test_packed_documents_match_each_document_alone(params, attention):
    config = TINY.replace(attention=attention)
    rng = np.random.RandomState(0)
    first, second = rng.randint(1, 97, 9), rng.randint(1, 97, 6)
    packed = np.concatenate([first, second, [0, 0, 0]])[None]
    segment_ids = np.array([[1] * 9 + [2] * 6 + [0] * 3])
    positions = np.array([list(range(9)) + list(range(6)) + [0] * 3])
    logits = _forward(config, params, packed, segment_ids=segment_ids, positions=positions)
    np.testing.assert_allclose(logits[0, :9], _forward(config, params, first[None])[0], atol=1e-5)
    np.testing.assert_allclose(logits[0, 9:15], _forward(config, params, second[None])[0], atol=1e-5)
    # Without segment ids the second document would see the first: the test can tell the difference.
    unmasked = _forward(config, params, packed)
    assert np.abs(unmasked[0, 9:15] - logits[0, 9:15]).max() > 1e-3


def test_attention_implementations_agree(params):
    ids = np.random.RandomState(1).randint(0, 97, (3, 21))
    segment_ids = np.array([[1] * 21, [1] * 10 + [2] * 11, [1] * 15 + [0] * 6])
    for kwargs in ({}, {"segment_ids": segment_ids}):
        np.testing.assert_allclose(_forward(TINY, params, ids, **kwargs),
                                   _forward(TINY.replace(attention="dot_product"), params, ids, **kwargs),
                                   atol=1e-5)


def test_blocked_causal_attention_equals_the_full_score_matrix():
    """Long self-attention runs in query blocks that skip keys after each block's end; it must
    equal one pass over the whole score matrix, for causal, packed and padded rows."""
    from phi1_jax.attention import attention_mask, unblocked_attention, xla_attention
    rng = np.random.RandomState(4)
    q, k, v = (jnp.asarray(rng.randn(2, 256, 4, 16), jnp.float32) for _ in range(3))
    segment_ids = jnp.asarray([[1] * 100 + [2] * 156, [1] * 200 + [0] * 56])
    slots = jnp.arange(256)
    for mask in (None, attention_mask(segment_ids, segment_ids, slots, slots)):
        np.testing.assert_allclose(xla_attention(q, k, v, mask),
                                   unblocked_attention(q, k, v, mask, 0, 0.0, None), atol=1e-6)


@pytest.mark.parametrize("remat_policy", ["none", "full", "dots_with_no_batch_dims"])
def test_scan_and_remat_compute_the_same_function(params, remat_policy):
    ids = np.random.RandomState(2).randint(0, 97, (2, 13))
    expected = _forward(TINY, params, ids)
    scanned = TINY.replace(scan_layers=True, remat_policy=remat_policy)
    np.testing.assert_allclose(_forward(scanned, stack_layers(params, TINY.num_layers), ids), expected, atol=1e-5)

    def loss(p):
        return Phi(scanned).apply({"params": p}, ids).mean()
    grads = jax.grad(loss)(stack_layers(params, TINY.num_layers))
    assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))


@pytest.mark.parametrize("scan_layers", [False, True])
def test_kv_cache_logits_equal_full_forward_at_every_position(params, scan_layers):
    config = TINY.replace(scan_layers=scan_layers)
    p = stack_layers(params, TINY.num_layers) if scan_layers else params
    ids = np.random.RandomState(3).randint(0, 97, (2, 20))
    full = _forward(config, p, ids)
    step = jax.jit(lambda tokens, cache: Phi(config).apply({"params": p}, tokens, cache=cache))
    logits, cache = step(jnp.asarray(ids[:, :7]), init_cache(config, 2, 24))  # prefill
    steps = [np.asarray(logits)]
    for t in range(7, 20):  # then one token at a time
        logits, cache = step(jnp.asarray(ids[:, t:t + 1]), cache)
        steps.append(np.asarray(logits))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5)
    assert int(cache["end"]) == 20



def test_a_call_that_fills_the_whole_cache_equals_a_prefill_into_a_larger_one(params):
    # 256 tokens: the full-length call runs the forward pass's blocked causal attention, the other
    # the cache's; a left-padded row checks that padding stays masked on both.
    ids = np.random.RandomState(4).randint(1, 97, (2, 256))
    segment_ids = np.ones_like(ids)
    segment_ids[1, :100] = 0
    positions = np.maximum(np.cumsum(segment_ids, axis=1) - 1, 0)

    def prefill(capacity: int) -> tuple:
        return Phi(TINY).apply({"params": params}, jnp.asarray(ids), positions=jnp.asarray(positions),
                               segment_ids=jnp.asarray(segment_ids), cache=init_cache(TINY, 2, capacity))

    exact_logits, exact_cache = prefill(256)
    roomy_logits, roomy_cache = prefill(320)
    real = segment_ids.astype(bool)
    np.testing.assert_allclose(np.asarray(exact_logits)[real], np.asarray(roomy_logits)[real], atol=1e-5)
    for name in ("k", "v"):
        for exact, roomy in zip(exact_cache[name], roomy_cache[name]):
            # [batch, heads, slots, d]; padding slots hold whatever padding computed, never read
            np.testing.assert_allclose(np.swapaxes(np.asarray(exact), 1, 2)[real],
                                       np.swapaxes(np.asarray(roomy)[:, :, :256], 1, 2)[real], atol=1e-5)
    alone = _forward(TINY, params, ids[1:, 100:])
    np.testing.assert_allclose(np.asarray(exact_logits)[1, 100:], alone[0], atol=1e-5)


def test_sampler_stops_at_eos_and_samples_reproducibly(params):
    greedy = generate(TINY, params, [[1, 2, 3]], max_new_tokens=10)[0]
    eos = greedy[4]
    stopped = generate(TINY, params, [[1, 2, 3]], max_new_tokens=10, eos_id=eos)[0]
    assert stopped == greedy[:greedy.index(eos)]
    a = generate(TINY, params, [[1, 2, 3]] * 4, max_new_tokens=16, temperature=1.0, top_p=0.9, seed=7)
    b = generate(TINY, params, [[1, 2, 3]] * 4, max_new_tokens=16, temperature=1.0, top_p=0.9, seed=7)
    assert a == b and len({tuple(x) for x in a}) > 1


def test_sampler_rejects_bad_requests(params):
    with pytest.raises(ValueError, match=r"prompts \[1\] are empty"):
        generate(TINY, params, [[1], []], max_new_tokens=4)
    with pytest.raises(ValueError, match="streams must be at least 1"):
        generate(TINY, params, [[1]], max_new_tokens=4, streams=0)
    with pytest.raises(ValueError, match="and 1 with a mesh"):
        generate(TINY, params, [[1], [2]], max_new_tokens=4, streams=2, mesh=make_mesh({"data": -1}))
    with pytest.raises(ValueError, match="top_p"):
        generate(TINY, params, [[1]], max_new_tokens=4, top_p=0.0)


def test_config_errors_name_the_problem():
    with pytest.raises(ValueError, match="hidden_size 100 is not divisible by num_heads 3"):
        PhiConfig(hidden_size=100, num_heads=3)
    with pytest.raises(ValueError, match=r"attention must be one of \('xla', 'dot_product'\), got 'flash'"):
        PhiConfig(attention="flash")
    with pytest.raises(ValueError, match=r"unknown model config keys \['hiden_size'\]"):
        PhiConfig.from_dict({"hiden_size": 64})


def test_dot_product_attention_refuses_attention_dropout_in_training(params):
    config = TINY.replace(attention="dot_product", attention_dropout=0.1)
    with pytest.raises(ValueError, match="no attention dropout"):
        Phi(config).apply({"params": params}, jnp.ones((1, 4), jnp.int32), deterministic=False,
                          rngs={"dropout": jax.random.key(0)})
