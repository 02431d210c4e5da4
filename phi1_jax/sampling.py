"""Batched autoregressive sampling with the KV cache: the generator behind evaluation's checkpoint
front-end and the demo's greedy sample.

Prompts of different lengths are left-padded into one batch; padding slots get segment id 0 so no
token attends to them, and positions count real tokens only, so every row decodes exactly as it
would alone. One jitted prefill fills the cache once per distinct prompt (many samples of one
prompt share that prefill) and copies it to the prompt's rows; then a jitted decode loop
(`lax.while_loop`) adds one token per step until the cache is full, every row has produced EOS,
or `max_new_tokens` is reached.

What keeps a decode step cheap: attention reads the cache buffers whole and in place, and the
cache holds only the filled slots rounded up to `CACHE_BLOCK`. When the decode loop fills it, the
cache grows by one block (one copy per `CACHE_BLOCK` tokens) and the loop continues, so a step
costs what the tokens so far cost, whatever `max_new_tokens` is. Each cache is updated in place
(the loop's buffers are donated). Shapes are bucketed (rows to a power of two, prompt length to
16, capacity to `CACHE_BLOCK`) and `max_new_tokens` is a traced loop bound, so calls in the same
bucket reuse the compiled prefill, decode and growth steps.

With a `mesh`, rows are split over its data-parallel axes and the parameters keep their training
layout (`phi1_jax.sharding` rules), so a TPU host or a multi-GPU box samples with all its chips.
On a CPU host with one XLA device, consecutive groups of rows run as concurrent streams, one per
core (`cpu_streams`). Row r draws step s with `row_keys`, so samples depend on the seed and the
row's place in the call only, not on batching, streams or devices.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import os
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from phi1_jax import sharding
from phi1_jax.layer_stacking import is_stacked, unstack_layers
from phi1_jax.model import CACHE_AXES, KVCache, Phi, init_cache, init_params
from phi1_jax.model_config import PhiConfig

_PROMPT_BUCKET = 16  # prompt lengths are padded to a multiple of this to bound recompilation
CACHE_BLOCK = 64  # the cache grows by this many slots; attention reads at most this many empty ones
_MIN_STREAM_ROWS = 4  # rows per CPU stream at least (measured: 2 streams of 4 rows beat 1 of 8)


def row_keys(rng: jax.Array, step: jax.Array, row_ids: jax.Array) -> jax.Array:
    """The keys `[rows]` a decode step draws with: row r at step s uses
    `fold_in(fold_in(rng, s), r)`, so a row's sample depends on its index in the call and not on
    how the rows are batched, split into streams or spread over devices."""
    step_key = jax.random.fold_in(rng, step)
    return jax.vmap(lambda row: jax.random.fold_in(step_key, row))(row_ids)


def choose_tokens(logits: jax.Array, keys: jax.Array, temperature: float, top_p: float) -> jax.Array:
    """Next token per row from float32 logits `[batch, vocab]`: argmax at temperature 0, else a
    sample with the row's key (`keys [batch]`) from the temperature-scaled distribution restricted
    to the top-p nucleus."""
    if temperature == 0.0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    logits = logits / temperature
    if top_p < 1.0:
        sorted_logits = jnp.sort(logits, axis=-1)[:, ::-1]
        sorted_probs = jax.nn.softmax(sorted_logits, axis=-1)
        # Keep the smallest prefix whose mass reaches top_p (the most likely token is always kept).
        outside = jnp.cumsum(sorted_probs, axis=-1) - sorted_probs >= top_p
        threshold = jnp.min(jnp.where(outside, jnp.inf, sorted_logits), axis=-1, keepdims=True)
        logits = jnp.where(logits < threshold, -jnp.inf, logits)
    return jax.vmap(jax.random.categorical)(keys, logits).astype(jnp.int32)


def decode_layout(config: PhiConfig, params: Any) -> tuple[PhiConfig, Any]:
    """The config and parameters the sampler runs: one subtree per layer, no remat. A scanned
    stack would copy the whole cache in and out of the scan at every step. Callers that sample
    many batches convert once; `generate` converts stacked parameters itself (a copy per call)."""
    return decode_config(config), unstack_layers(params) if is_stacked(params) else params


def decode_config(config: PhiConfig) -> PhiConfig:
    """The sampler's config of a model (see `decode_layout`)."""
    return config.replace(scan_layers=False, remat_policy="none")


def _row_bucket(rows: int, multiple: int) -> int:
    """Rows padded to the next power of two, then to a multiple of the data-parallel devices."""
    rows = 1 << (rows - 1).bit_length()
    return -(-rows // multiple) * multiple


def _call_shape(rows: int, distinct: int, longest_prompt: int, mesh: Optional[Mesh]) -> tuple[int, int, int, int]:
    """(decode rows, prefill rows, prompt length, first cache capacity) of a call, in buckets."""
    shards = 1 if mesh is None else mesh.shape["data"] * mesh.shape["fsdp"]
    prompt_len = -(-longest_prompt // _PROMPT_BUCKET) * _PROMPT_BUCKET
    capacity = (prompt_len // CACHE_BLOCK + 1) * CACHE_BLOCK  # room for at least one new token
    return _row_bucket(rows, shards), _row_bucket(distinct, shards), prompt_len, capacity


@functools.lru_cache(maxsize=None)
def _params_sharding(config: PhiConfig, mesh: Mesh) -> Any:
    boxed = jax.eval_shape(functools.partial(init_params, config, jax.random.key(0), boxed=True))
    return sharding.params_sharding(boxed, mesh)


def _with_empty_slots(cache: KVCache, slots: int) -> KVCache:
    """The cache with `slots` more empty slots after its last (a new, larger buffer)."""
    def pad(x: jax.Array, names: tuple[str, ...]) -> jax.Array:
        widths = [(0, 0)] * x.ndim
        widths[names.index("length")] = (0, slots)
        return nn.with_logical_constraint(jnp.pad(x, widths), names)

    return dict(cache, k=tuple(pad(x, CACHE_AXES) for x in cache["k"]), v=tuple(pad(x, CACHE_AXES) for x in cache["v"]),
                segment_ids=pad(cache["segment_ids"], ("batch", "length")))


@functools.partial(jax.jit, static_argnames=("config", "capacity"))
def _prefill(params: Any, tokens: jax.Array, segment_ids: jax.Array, positions: jax.Array,
             source_rows: jax.Array, *, config: PhiConfig, capacity: int) -> tuple[KVCache, jax.Array, jax.Array]:
    """Prefills the distinct prompts `tokens [distinct, prompt_len]` and gives decode row r a cache
    of `capacity` slots holding prompt `source_rows[r]`, its last logits and its next position.
    The prompts fill a cache of their own length, so their attention is the causal one of a
    forward pass (`attention.cached_attention`), and the empty slots are added after."""
    cache = init_cache(config, tokens.shape[0], tokens.shape[1])
    logits, cache = Phi(config).apply({"params": params}, tokens, positions=positions, segment_ids=segment_ids,
                                      cache=cache, last_logits_only=True)

    def to_rows(x: jax.Array, names: tuple[str, ...]) -> jax.Array:
        return nn.with_logical_constraint(jnp.take(x, source_rows, axis=0), names)

    cache = dict(cache, k=tuple(to_rows(x, CACHE_AXES) for x in cache["k"]),
                 v=tuple(to_rows(x, CACHE_AXES) for x in cache["v"]),
                 segment_ids=to_rows(cache["segment_ids"], ("batch", "length")))
    cache = _with_empty_slots(cache, capacity - tokens.shape[1])
    return cache, to_rows(logits[:, -1], ("batch", "vocab")), jnp.take(positions[:, -1] + 1, source_rows)


@jax.jit
def _grow(cache: KVCache) -> KVCache:
    """The cache with `CACHE_BLOCK` more empty slots (a new buffer: a larger one cannot reuse the
    old one, so donating it would only warn)."""
    return _with_empty_slots(cache, CACHE_BLOCK)


DecodeState = tuple[jax.Array, KVCache, jax.Array, jax.Array, jax.Array, jax.Array]


@functools.partial(jax.jit, static_argnames=("config", "temperature", "top_p", "eos_id"), donate_argnums=(1,))
def _decode_until_full(params: Any, state: DecodeState, max_new_tokens: jax.Array, rng: jax.Array,
                       row_ids: jax.Array, *, config: PhiConfig, temperature: float, top_p: float,
                       eos_id: Optional[int]) -> tuple[DecodeState, jax.Array]:
    """Decodes from `state` (step, cache, last logits, next positions, done, lengths) until the
    cache is full, every row is done or `max_new_tokens` steps are taken. Returns the new state
    and the tokens of the steps taken, `[batch, CACHE_BLOCK]` from the first of them (done rows
    get 0). Draws use `row_keys(rng, step, row_ids)`, so how the steps fall into calls does not
    matter."""
    model = Phi(config)
    first_step, cache = state[0], state[1]
    batch, capacity = cache["segment_ids"].shape

    def keep_going(carry: tuple) -> jax.Array:
        (step, cache, _, _, done, _), _ = carry
        return (step < max_new_tokens) & ~jnp.all(done) & (cache["end"] < capacity)

    def decode_one(carry: tuple) -> tuple:
        (step, cache, last_logits, next_pos, done, lengths), out = carry
        token = choose_tokens(last_logits, row_keys(rng, step, row_ids), temperature, top_p)
        out = out.at[:, step - first_step].set(jnp.where(done, 0, token))
        if eos_id is not None:
            finished = ~done & (token == eos_id)
            lengths = jnp.where(finished, step, lengths)
            done = done | finished
        logits, cache = model.apply({"params": params}, token[:, None], positions=next_pos[:, None],
                                    segment_ids=jnp.ones((batch, 1), jnp.int32), cache=cache)
        return (step + 1, cache, logits[:, -1], next_pos + 1, done, lengths), out

    out = jnp.zeros((batch, CACHE_BLOCK), jnp.int32)
    return jax.lax.while_loop(keep_going, decode_one, (state, out))


def generate(config: PhiConfig, params: Any, prompts: Sequence[Sequence[int]], *, max_new_tokens: int,
             temperature: float = 0.0, top_p: float = 1.0, eos_id: Optional[int] = None, seed: int = 0,
             mesh: Optional[Mesh] = None, streams: Optional[int] = None) -> list[list[int]]:
    """New tokens for each prompt (EOS itself not included), at most `max_new_tokens` each.
    Repeated prompts (n samples of one problem) are prefilled once. With `mesh`, the rows are
    split over its `data` and `fsdp` axes and the parameters laid out by the training rules.
    Without, the rows are split into `streams` consecutive groups decoded at the same time
    (default `cpu_streams(len(prompts))`: more than one only on a CPU host); the samples do not
    depend on the split."""
    if not prompts:
        return []
    if max_new_tokens <= 0:
        raise ValueError(f"max_new_tokens must be positive, got {max_new_tokens}")
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature}, {top_p}")
    empty = [i for i, prompt in enumerate(prompts) if len(prompt) == 0]
    if empty:
        raise ValueError(f"prompts {empty} are empty; every prompt needs at least one token")
    if streams is not None and (streams < 1 or (mesh is not None and streams != 1)):
        raise ValueError(f"streams must be at least 1, and 1 with a mesh (its devices split the rows), got {streams}")
    config, params = decode_layout(config, params)
    sample = functools.partial(_generate_rows, config, params, max_new_tokens=max_new_tokens,
                               temperature=float(temperature), top_p=float(top_p), eos_id=eos_id, seed=seed,
                               mesh=mesh)
    if streams is None:
        streams = 1 if mesh is not None else cpu_streams(len(prompts))
    if streams == 1:
        return sample(prompts, 0)
    size = -(-len(prompts) // streams)
    device = jax.config.jax_default_device  # the caller's `jax.default_device`, which threads do not inherit

    def sample_group(first: int) -> list[list[int]]:
        with jax.default_device(device):
            return sample(prompts[first:first + size], first)

    with concurrent.futures.ThreadPoolExecutor(streams) as pool:
        return [tokens for part in pool.map(sample_group, range(0, len(prompts), size)) for tokens in part]


def host_mesh(devices: Sequence[jax.Device]) -> Mesh:
    """The mesh that samples on one host's chips (`evaluation.humaneval --checkpoint` on a TPU or
    GPU host, and what `phi1_jax.preflight` compiles): rows split over every chip, parameters
    replicated, so no chip waits on another's weights at every decode step."""
    return sharding.make_mesh({"data": -1}, devices)


def cpu_streams(rows: int) -> int:
    """How many groups of rows `generate` decodes at the same time without a mesh: on a host whose
    only XLA device is its CPU, one per core (a power of two, each of at least
    `_MIN_STREAM_ROWS` rows), else 1.

    XLA:CPU runs a decode step's ops mostly one after another: an attention dot over the cache is a
    matrix-vector product that its dot emitter runs on one thread, and its thunk executor hands a
    ready op to another thread only when several are ready at once. Two programs running at the
    same time keep both cores busy: on 2 cores, at prompt 64 and 8 to 128 rows, 1.1-1.5x the
    single stream's ratio to HF generate; 0.9-1.5x at prompt 512, where reading the cache sets the
    pace (`benchmarks/eval_sampling_speed.py` against `--streams 1`). More cores: not measured."""
    if jax.default_backend() != "cpu" or len(jax.local_devices()) != 1:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    streams = max(1, min(cores, rows // _MIN_STREAM_ROWS))
    return 1 << (streams.bit_length() - 1)


def _generate_rows(config: PhiConfig, params: Any, prompts: Sequence[Sequence[int]], first_row: int, *,
                   max_new_tokens: int, temperature: float, top_p: float, eos_id: Optional[int], seed: int,
                   mesh: Optional[Mesh]) -> list[list[int]]:
    """`generate` for validated `prompts` in the decode layout, as rows `first_row` onwards of
    the call (their sampling keys): one prefill, then the decode loop and cache growth."""
    distinct: dict[tuple[int, ...], int] = {}
    source_rows = [distinct.setdefault(tuple(prompt), len(distinct)) for prompt in prompts]
    rows, distinct_rows, prompt_len, capacity = _call_shape(len(prompts), len(distinct),
                                                            max(len(p) for p in distinct), mesh)
    tokens = np.zeros((distinct_rows, prompt_len), np.int32)
    segment_ids = np.zeros_like(tokens)
    for row, prompt in enumerate(distinct):
        tokens[row, prompt_len - len(prompt):] = prompt
        segment_ids[row, prompt_len - len(prompt):] = 1
    positions = np.maximum(np.cumsum(segment_ids, axis=1) - 1, 0).astype(np.int32)
    source = np.zeros((rows,), np.int32)
    source[:len(prompts)] = source_rows
    live = np.arange(rows) < len(prompts)
    row_ids = first_row + np.arange(rows, dtype=np.int32)
    rng = jax.random.key(seed)
    static = dict(config=config, temperature=temperature, top_p=top_p, eos_id=eos_id)
    with contextlib.ExitStack() as context:
        if mesh is not None:
            context.enter_context(sharding.activate(mesh))
            per_row = sharding.logical_to_sharding(PartitionSpec("batch"), mesh)
            params = jax.device_put(params, _params_sharding(config, mesh))
            tokens, segment_ids, positions = (jax.device_put(x, sharding.batch_sharding(mesh))
                                              for x in (tokens, segment_ids, positions))
            source, live, row_ids = (jax.device_put(x, per_row) for x in (source, live, row_ids))
        cache, logits, next_pos = _prefill(params, tokens, segment_ids, positions, source, config=config,
                                           capacity=capacity)
        state = (jnp.zeros((), jnp.int32), cache, logits, next_pos, ~live, jnp.full((rows,), max_new_tokens, jnp.int32))
        out = np.zeros((rows, max_new_tokens), np.int32)
        while True:
            first = int(state[0])
            state, block = _decode_until_full(params, state, np.int32(max_new_tokens), rng, row_ids, **static)
            taken = int(state[0]) - first
            out[:, first:first + taken] = np.asarray(block)[:, :taken]
            if first + taken >= max_new_tokens or np.all(np.asarray(state[4])):
                break
            state = (state[0], _grow(state[1]), *state[2:])
    lengths = np.asarray(state[5])
    return [out[row, :lengths[row]].tolist() for row in range(len(prompts))]


def compile_programs(config: PhiConfig, mesh: Mesh, rows: int, prompt_len: int,
                     max_new_tokens: int) -> dict[str, Any]:
    """The prefill and decode programs that `generate(config, params, prompts, mesh=mesh)` runs for
    `rows` distinct prompts of `prompt_len` tokens, compiled ahead of time for the mesh's devices
    (abstract TPU devices included: `phi1_jax.preflight`). The decode program is the one of the
    call's last and largest cache, holding the prompt and `max_new_tokens` tokens."""
    config = decode_config(config)
    rows, distinct_rows, prompt_len, capacity = _call_shape(rows, rows, prompt_len, mesh)
    last_capacity = capacity + max(0, -(-(prompt_len + max_new_tokens - capacity) // CACHE_BLOCK)) * CACHE_BLOCK

    def placed(shape: tuple[int, ...], dtype: Any, where: Any) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct(shape, dtype, sharding=where)

    params = jax.tree.map(lambda a, s: placed(a.shape, a.dtype, s),
                          jax.eval_shape(functools.partial(init_params, config, jax.random.key(0))),
                          _params_sharding(config, mesh))
    with sharding.activate(mesh):
        per_row = sharding.logical_to_sharding(PartitionSpec("batch"), mesh)
        prompts = placed((distinct_rows, prompt_len), jnp.int32, sharding.batch_sharding(mesh))
        source = placed((rows,), jnp.int32, per_row)
        prefill = _prefill.lower(params, prompts, prompts, prompts, source, config=config,
                                 capacity=capacity).compile()
        cache, logits, next_pos = jax.eval_shape(functools.partial(_prefill, config=config, capacity=last_capacity),
                                                 params, prompts, prompts, prompts, source)
        cache, logits, next_pos = jax.tree.map(lambda a, s: placed(a.shape, a.dtype, s),
                                               (cache, logits, next_pos), prefill.output_shardings)
        scalar = sharding.replicated(mesh)
        state = (placed((), jnp.int32, scalar), cache, logits, next_pos, placed((rows,), jnp.bool_, per_row),
                 placed((rows,), jnp.int32, per_row))
        key = jax.eval_shape(lambda: jax.random.key(0))
        decode = _decode_until_full.lower(params, state, placed((), jnp.int32, scalar),
                                          placed(key.shape, key.dtype, scalar), source, config=config,
                                          temperature=0.0, top_p=1.0, eos_id=None).compile()
    return {"prefill": prefill, "decode": decode}
