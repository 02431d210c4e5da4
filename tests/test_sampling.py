"""The KV-cache sampler against full forward passes (greedy and sampled, float32 and bfloat16)
and its decode path: a cache that grows block by block as the sampler decodes, one prefill shared
by the samples of a prompt, one compilation per shape bucket, rows decoded in concurrent streams
(a CPU host's default), and sampling over a mesh of 8 simulated CPU devices with the parameters
laid out as in training. HF parity of the tokens is in test_convert.py."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from phi1_jax import Phi, PhiConfig, init_cache, init_params, sampling
from phi1_jax.layer_stacking import stack_layers
from phi1_jax.sampling import CACHE_BLOCK, choose_tokens, generate, row_keys
from phi1_jax.sharding import make_mesh

TINY = PhiConfig(vocab_size=96, hidden_size=64, intermediate_size=160, num_layers=2, num_heads=4,
                 initializer_range=0.2)
PROMPTS = [[5, 6, 7, 8, 9, 10, 11], [42], list(range(1, 20)), [3, 1, 4, 1, 5, 9, 2, 6]]


@pytest.fixture(scope="module")
def params():
    return init_params(TINY, jax.random.key(0))


def _decode_by_full_forward(config, params, prompt, steps, temperature=0.0, seed=0, row=0):
    """Decoding one prompt with no cache: a full forward over the whole sequence for every new
    token, which is drawn as `generate` draws step s of row `row` (greedy at temperature 0).
    The buffer is right-padded to a fixed length (causal attention never looks right), so one
    compilation serves every step."""
    forward = jax.jit(lambda ids: Phi(config).apply({"params": params}, ids))
    tokens = np.zeros((1, len(prompt) + steps), np.int32)
    tokens[0, :len(prompt)] = prompt
    for step, t in enumerate(range(len(prompt), len(prompt) + steps)):
        logits = forward(tokens)[:, t - 1]
        keys = row_keys(jax.random.key(seed), step, jnp.full((1,), row, jnp.int32))
        tokens[0, t] = int(choose_tokens(logits, keys, temperature, 1.0)[0])
    return tokens[0, len(prompt):].tolist()


def test_sampler_greedy_equals_repeated_full_forward(params):
    prompts = [[5, 6, 7, 8, 9, 10, 11], [42], list(range(1, 20))]  # left padding to 32 slots
    expected = [_decode_by_full_forward(TINY, params, p, 12) for p in prompts]
    assert generate(TINY, params, prompts, max_new_tokens=12) == expected


def test_decoding_across_cache_blocks_equals_full_forward(params):
    """Prefill, then one token at a time through a cache three blocks longer than the sequence so
    far: every position's logits equal one forward pass over the whole sequence (the empty slots
    attention reads are masked)."""
    ids = np.random.RandomState(3).randint(0, 96, (2, 2 * CACHE_BLOCK + 20))
    full = np.asarray(Phi(TINY).apply({"params": params}, ids))
    step = jax.jit(lambda tokens, cache: Phi(TINY).apply({"params": params}, tokens, cache=cache))
    logits, cache = step(jnp.asarray(ids[:, :100]), init_cache(TINY, 2, 5 * CACHE_BLOCK + 50))
    steps = [np.asarray(logits)]
    for t in range(100, ids.shape[1]):
        logits, cache = step(jnp.asarray(ids[:, t:t + 1]), cache)
        steps.append(np.asarray(logits))
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5)


def test_a_cache_grown_while_decoding_gives_the_tokens_of_full_forward_passes(params):
    """A 7-token prompt (bucketed to 16 slots) and 3 * CACHE_BLOCK new tokens: the cache starts at
    one block and grows three times inside one call. Sampled at temperature 1, so the tokens stay
    varied and any error in the grown cache's attention shows, each token equals the draw from a
    full forward pass; greedy too; and an EOS first drawn after the first growth cuts there."""
    steps = 3 * CACHE_BLOCK
    sampled = _decode_by_full_forward(TINY, params, PROMPTS[0], steps, temperature=1.0, seed=7)
    assert generate(TINY, params, [PROMPTS[0]], max_new_tokens=steps, temperature=1.0, seed=7)[0] == sampled
    greedy = _decode_by_full_forward(TINY, params, PROMPTS[0], steps)
    assert generate(TINY, params, [PROMPTS[0]], max_new_tokens=steps) == [greedy]
    late = [i for i, token in enumerate(sampled) if i > CACHE_BLOCK and sampled.index(token) == i]
    assert late, "every token of the sample appeared before the cache first grew; pick another seed"
    eos = sampled[late[0]]
    assert generate(TINY, params, [PROMPTS[0]], max_new_tokens=steps, temperature=1.0, seed=7,
                    eos_id=eos)[0] == sampled[:late[0]]


def test_repeated_prompts_share_a_prefill_and_decode_as_if_alone(params):
    alone = [generate(TINY, params, [p], max_new_tokens=9)[0] for p in PROMPTS[:2]]
    mixed = [PROMPTS[0], PROMPTS[1], PROMPTS[0], PROMPTS[0], PROMPTS[1]]
    assert generate(TINY, params, mixed, max_new_tokens=9) == [alone[0], alone[1], alone[0], alone[0], alone[1]]
    # Sampled copies of one prompt still draw their own tokens.
    sampled = generate(TINY, params, [PROMPTS[0]] * 6, max_new_tokens=12, temperature=1.0, seed=3)
    assert len({tuple(s) for s in sampled}) > 1


def test_rows_decoded_in_streams_draw_what_one_stream_draws(params, monkeypatch):
    """Streams (groups of rows decoded at once, what a CPU host runs) change nothing a row draws:
    its keys follow its index in the call, and copies of a prompt may fall in different streams."""
    prompts = PROMPTS * 2 + [PROMPTS[0]]
    sampling_kwargs = dict(max_new_tokens=10, temperature=1.0, seed=11)
    one = generate(TINY, params, prompts, streams=1, **sampling_kwargs)
    assert len({tuple(tokens) for tokens in one}) == len(one)
    assert one[6] == _decode_by_full_forward(TINY, params, prompts[6], 10, temperature=1.0, seed=11, row=6)
    prefill_devices = []

    def recording_prefill(*args, **kwargs):
        out = real_prefill(*args, **kwargs)
        prefill_devices.append(out[1].devices())
        return out

    real_prefill = sampling._prefill
    monkeypatch.setattr(sampling, "_prefill", recording_prefill)
    with jax.default_device(jax.devices()[3]):
        assert generate(TINY, params, prompts, streams=2, **sampling_kwargs) == one
    assert prefill_devices == [{jax.devices()[3]}] * 2, "each stream runs on the caller's default device"
    assert generate(TINY, params, prompts, streams=4, **sampling_kwargs) == one
    assert generate(TINY, params, prompts, max_new_tokens=10, streams=3) == \
        generate(TINY, params, prompts, max_new_tokens=10, streams=1)


def test_cpu_streams_split_rows_only_for_a_lone_cpu_device():
    assert len(jax.local_devices()) == 8, "tests/conftest.py simulates 8 CPU devices"
    assert sampling.cpu_streams(64) == 1  # 8 devices: the evaluator already spreads batches over them
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    probe = "from phi1_jax.sampling import cpu_streams; print(*(cpu_streams(rows) for rows in (1, 7, 8, 64)))"
    counts = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    cores = len(os.sched_getaffinity(0))
    assert counts.stdout.split() == [str(n) for n in (1, 1, min(2, 1 << (cores.bit_length() - 1)),
                                                      1 << (min(cores, 16).bit_length() - 1))]


def test_calls_in_one_shape_bucket_compile_once(params):
    compiles = []

    def count(event: str, duration: float, **kwargs) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(duration)

    # Batch 3 -> 4 rows, prompt <= 32: a cache of one block, grown once to two.
    generate(TINY, params, PROMPTS[:3], max_new_tokens=CACHE_BLOCK - 10)
    jax.monitoring.register_event_duration_secs_listener(count)
    try:
        # Other prompts, batch, lengths and max_new_tokens, same bucket: nothing to compile.
        generate(TINY, params, [[7] * 25, [1, 2], [9] * 3, [4] * 17], max_new_tokens=CACHE_BLOCK - 20)
        assert compiles == []
        generate(TINY, params, PROMPTS + [[1]], max_new_tokens=10)  # 5 rows: the next bucket
        assert compiles
    finally:
        jax.monitoring.unregister_event_duration_listener(count)


def test_sampling_over_a_mesh_gives_the_single_device_tokens(params):
    assert len(jax.devices()) == 8, "tests/conftest.py simulates 8 CPU devices"
    prompts = PROMPTS * 3
    greedy = generate(TINY, params, prompts, max_new_tokens=10)
    sampled = generate(TINY, params, prompts, max_new_tokens=10, temperature=0.8, top_p=0.9, seed=5)
    data_mesh = make_mesh({"data": -1})
    assert generate(TINY, params, prompts, max_new_tokens=10, mesh=data_mesh) == greedy
    long = CACHE_BLOCK + 8  # the cache grows while its rows are split over the devices
    assert generate(TINY, params, prompts, max_new_tokens=long, mesh=data_mesh) == \
        generate(TINY, params, prompts, max_new_tokens=long)
    assert generate(TINY, params, prompts, max_new_tokens=10, temperature=0.8, top_p=0.9, seed=5,
                    mesh=data_mesh) == sampled
    # Parameters as trained: stacked layers, split over fsdp and tensor.
    scanned = TINY.replace(scan_layers=True, remat_policy="full")
    trained_mesh = make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
    assert generate(scanned, stack_layers(params, TINY.num_layers), prompts, max_new_tokens=10,
                    mesh=trained_mesh) == greedy


def test_bfloat16_sampling_of_several_rows_equals_full_forward_passes(params):
    """XLA:CPU has no batched bf16 x bf16 -> f32 dot inside the decode loop; the cached attention
    multiplies the same bfloat16 values in float32 there, which gives a bfloat16 model's tokens."""
    config = TINY.replace(dtype="bfloat16", param_dtype="bfloat16")
    bf16_params = jax.tree.map(lambda x: x.astype(jnp.bfloat16), params)
    prompts = PROMPTS[:3]
    expected = [_decode_by_full_forward(config, bf16_params, p, 10) for p in prompts]
    assert generate(config, bf16_params, prompts, max_new_tokens=10) == expected
