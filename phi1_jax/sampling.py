"""Batched autoregressive sampling with the KV cache: the generator behind evaluation's checkpoint
front-end and the demo's greedy sample.

Prompts of different lengths are left-padded into one batch; padding slots get segment id 0 so no
token attends to them, and positions count real tokens only, so every row decodes exactly as it
would alone. One jitted function prefills the cache once per distinct prompt (many samples of one
prompt share that prefill), copies it to the prompt's rows, and then decodes one token per step in
a `lax.while_loop` until every row has produced EOS or `max_new_tokens` tokens.

What keeps a decode step cheap: the cache is one buffer per layer updated in place, attention
reads only its filled blocks (`attention.cached_attention`), and `max_new_tokens` is a traced loop
bound. Shapes are bucketed (rows to a power of two, prompt length to 16, cache capacity to the
attention block), so calls in the same bucket reuse one compilation.

With a `mesh`, rows are split over its data-parallel axes and the parameters keep their training
layout (`phi1_jax.sharding` rules), so a TPU host or a multi-GPU box samples with all its chips.
"""

from __future__ import annotations

import functools
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from phi1_jax import sharding
from phi1_jax.attention import KV_BLOCK
from phi1_jax.layer_stacking import is_stacked, unstack_layers
from phi1_jax.model import Phi, init_cache, init_params
from phi1_jax.model_config import PhiConfig

_PROMPT_BUCKET = 16  # prompt lengths are padded to a multiple of this to bound recompilation


def choose_tokens(logits: jax.Array, rng: jax.Array, temperature: float, top_p: float) -> jax.Array:
    """Next token per row from float32 logits `[batch, vocab]`: argmax at temperature 0, else a
    sample from the temperature-scaled distribution restricted to the top-p nucleus."""
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
    return jax.random.categorical(rng, logits, axis=-1).astype(jnp.int32)


def decode_layout(config: PhiConfig, params: Any) -> tuple[PhiConfig, Any]:
    """The config and parameters the sampler runs: one subtree per layer, no remat. A scanned
    stack would copy the whole cache in and out of the scan at every step. Callers that sample
    many batches convert once; `generate` converts stacked parameters itself (a copy per call)."""
    decode_config = config.replace(scan_layers=False, remat_policy="none")
    return decode_config, unstack_layers(params) if is_stacked(params) else params


def _row_bucket(rows: int, multiple: int) -> int:
    """Rows padded to the next power of two, then to a multiple of the data-parallel devices."""
    rows = 1 << (rows - 1).bit_length()
    return -(-rows // multiple) * multiple


@functools.lru_cache(maxsize=None)
def _params_sharding(config: PhiConfig, mesh: Mesh) -> Any:
    boxed = jax.eval_shape(functools.partial(init_params, config, jax.random.key(0), boxed=True))
    return sharding.params_sharding(boxed, mesh)


@functools.partial(jax.jit, static_argnames=("config", "capacity", "temperature", "top_p", "eos_id"))
def _sample(params: Any, tokens: jax.Array, segment_ids: jax.Array, positions: jax.Array, source_rows: jax.Array,
            live: jax.Array, max_new_tokens: jax.Array, rng: jax.Array, *, config: PhiConfig, capacity: int,
            temperature: float, top_p: float, eos_id: Optional[int]) -> tuple[jax.Array, jax.Array]:
    """Prefills the distinct prompts `tokens [distinct, prompt_len]`, gives decode row r the cache
    of prompt `source_rows[r]`, and decodes; rows that are not `live` (batch padding) start done."""
    model = Phi(config)
    cache = init_cache(config, tokens.shape[0], capacity)
    logits, cache = model.apply({"params": params}, tokens, positions=positions, segment_ids=segment_ids,
                                cache=cache, last_logits_only=True)

    def to_rows(x: jax.Array, names: tuple[str, ...]) -> jax.Array:
        return nn.with_logical_constraint(jnp.take(x, source_rows, axis=0), names)

    kv_names = ("batch", "heads", "length", "kv")
    cache = dict(cache, k=tuple(to_rows(x, kv_names) for x in cache["k"]),
                 v=tuple(to_rows(x, kv_names) for x in cache["v"]),
                 segment_ids=to_rows(cache["segment_ids"], ("batch", "length")))
    batch = source_rows.shape[0]
    out = jnp.zeros((batch, capacity - tokens.shape[1]), jnp.int32)
    lengths = jnp.full((batch,), max_new_tokens, jnp.int32)

    def keep_going(state: tuple) -> jax.Array:
        step, _, _, _, done, _, _ = state
        return (step < max_new_tokens) & ~jnp.all(done)

    def decode_one(state: tuple) -> tuple:
        step, cache, last_logits, next_pos, done, out, lengths = state
        token = choose_tokens(last_logits, jax.random.fold_in(rng, step), temperature, top_p)
        out = out.at[:, step].set(jnp.where(done, 0, token))
        if eos_id is not None:
            finished = ~done & (token == eos_id)
            lengths = jnp.where(finished, step, lengths)
            done = done | finished
        logits, cache = model.apply({"params": params}, token[:, None], positions=next_pos[:, None],
                                    segment_ids=jnp.ones((batch, 1), jnp.int32), cache=cache)
        return step + 1, cache, logits[:, -1], next_pos + 1, done, out, lengths

    state = (jnp.zeros((), jnp.int32), cache, to_rows(logits[:, -1], ("batch", "vocab")),
             jnp.take(positions[:, -1] + 1, source_rows), ~live, out, lengths)
    final = jax.lax.while_loop(keep_going, decode_one, state)
    return final[5], final[6]


def generate(config: PhiConfig, params: Any, prompts: Sequence[Sequence[int]], *, max_new_tokens: int,
             temperature: float = 0.0, top_p: float = 1.0, eos_id: Optional[int] = None, seed: int = 0,
             mesh: Optional[Mesh] = None) -> list[list[int]]:
    """New tokens for each prompt (EOS itself not included), at most `max_new_tokens` each.
    Repeated prompts (n samples of one problem) are prefilled once. With `mesh`, the rows are
    split over its `data` and `fsdp` axes and the parameters laid out by the training rules."""
    if not prompts:
        return []
    if max_new_tokens <= 0:
        raise ValueError(f"max_new_tokens must be positive, got {max_new_tokens}")
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature}, {top_p}")
    empty = [i for i, prompt in enumerate(prompts) if len(prompt) == 0]
    if empty:
        raise ValueError(f"prompts {empty} are empty; every prompt needs at least one token")
    config, params = decode_layout(config, params)
    distinct: dict[tuple[int, ...], int] = {}
    source_rows = [distinct.setdefault(tuple(prompt), len(distinct)) for prompt in prompts]
    shards = 1 if mesh is None else mesh.shape["data"] * mesh.shape["fsdp"]
    rows = _row_bucket(len(prompts), shards)
    prompt_len = -(-max(len(p) for p in distinct) // _PROMPT_BUCKET) * _PROMPT_BUCKET
    tokens = np.zeros((_row_bucket(len(distinct), shards), prompt_len), np.int32)
    segment_ids = np.zeros_like(tokens)
    for row, prompt in enumerate(distinct):
        tokens[row, prompt_len - len(prompt):] = prompt
        segment_ids[row, prompt_len - len(prompt):] = 1
    positions = np.maximum(np.cumsum(segment_ids, axis=1) - 1, 0).astype(np.int32)
    source = np.zeros((rows,), np.int32)
    source[:len(prompts)] = source_rows
    live = np.arange(rows) < len(prompts)
    capacity = -(-(prompt_len + max_new_tokens) // KV_BLOCK) * KV_BLOCK
    args = (params, tokens, segment_ids, positions, source, live, np.int32(max_new_tokens), jax.random.key(seed))
    static = dict(config=config, capacity=capacity, temperature=float(temperature), top_p=float(top_p),
                  eos_id=eos_id)
    if mesh is None:
        out, lengths = _sample(*args, **static)
    else:
        with sharding.activate(mesh):
            per_row = sharding.logical_to_sharding(PartitionSpec("batch"), mesh)
            placed = (jax.device_put(params, _params_sharding(config, mesh)),
                      *(jax.device_put(x, sharding.batch_sharding(mesh)) for x in (tokens, segment_ids, positions)),
                      jax.device_put(source, per_row), jax.device_put(live, per_row), *args[6:])
            out, lengths = _sample(*placed, **static)
    out, lengths = np.asarray(out), np.asarray(lengths)
    return [out[row, :lengths[row]].tolist() for row in range(len(prompts))]
