"""Attention math for `phi1_jax.model`: the mask that serves packing, padding and the KV cache
alike, and the two implementations chosen by `config.model.attention`.

- `xla`: a plain einsum reference with float32 softmax and attention-probability dropout; the
  implementation tests compare against.
- `dot_product`: `jax.nn.dot_product_attention` with no `implementation=`, which jax 0.10 runs
  as its XLA implementation (cuDNN flash attention needs `implementation="cudnn"`, not wired:
  untested without a GPU). It has no attention dropout, so it refuses `attention_dropout > 0`
  while training.

With a KV cache (prefill and decode in `phi1_jax.sampling`) both use `cached_attention`, which
reads the cache buffers in place, or, for a call that fills its whole cache (the sampler's
prefill), attends over the call's own keys as a forward pass does.

Every key slot carries a segment id (0 = empty or padding) and a slot index; a query attends to a
key when both are in the same non-zero segment and the key's slot is not after the query's.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class CacheQuery(NamedTuple):
    """Where a call with the KV cache sits: its tokens' segment ids `[b, s]`, the cache's segment
    ids including them `[b, capacity]`, and the slot of its first token."""

    segment_ids: jax.Array
    kv_segment_ids: jax.Array
    start: jax.Array


def attention_mask(
    q_segment_ids: jax.Array, kv_segment_ids: jax.Array, q_slots: jax.Array, kv_slots: jax.Array
) -> jax.Array:
    """Boolean `[batch, 1, q_len, kv_len]` mask; segments `[batch, len]`, slots `[len]`."""
    same_segment = q_segment_ids[:, :, None] == kv_segment_ids[:, None, :]
    occupied = (kv_segment_ids != 0)[:, None, :]
    causal = (kv_slots[None, :] <= q_slots[:, None])[None]
    return (same_segment & occupied & causal)[:, None]


_CAUSAL_BLOCKS = 4
_MIN_BLOCK = 64


def xla_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    mask: jax.Array | None,
    *,
    dropout_rate: float = 0.0,
    dropout_rng: jax.Array | None = None,
) -> jax.Array:
    """Reference attention. q `[b, s, heads, d]`, k and v `[b, t, kv_heads, d]`, mask `[b, 1, s, t]`
    (None: causal over equal-length q and kv).

    Self-attention over a whole sequence (s == t: training and full forward passes; every mask
    here is causal) is computed in `_CAUSAL_BLOCKS` query blocks, block i reading keys only up to
    its own end: 10/16 of the score matrix instead of all of it."""
    q_len, kv_len = q.shape[1], k.shape[1]
    blocks = _CAUSAL_BLOCKS if q_len == kv_len and q_len % _CAUSAL_BLOCKS == 0 else 1
    if blocks == 1 or q_len // blocks < _MIN_BLOCK:
        return unblocked_attention(q, k, v, mask, 0, dropout_rate, dropout_rng)
    size = q_len // blocks
    outs = []
    for i in range(blocks):
        rows, cols = slice(i * size, (i + 1) * size), slice(0, (i + 1) * size)
        block_mask = None if mask is None else mask[:, :, rows, cols]
        block_rng = None if dropout_rng is None else jax.random.fold_in(dropout_rng, i)
        outs.append(unblocked_attention(q[:, rows], k[:, cols], v[:, cols], block_mask, i * size,
                                        dropout_rate, block_rng))
    return jnp.concatenate(outs, axis=1)


def unblocked_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array | None, q_offset: int,
                        dropout_rate: float, dropout_rng: jax.Array | None) -> jax.Array:
    """Queries at slots `q_offset + arange(s)` against keys at slots `arange(t)`; mask None means
    causal."""
    if mask is None:
        mask = (jnp.arange(k.shape[1])[None, :] <= q_offset + jnp.arange(q.shape[1])[:, None])[None, None]
    return _attend(q, k, v, mask, "btkd", dropout_rate, dropout_rng)


def _attend(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array, kv_layout: str,
            dropout_rate: float = 0.0, dropout_rng: jax.Array | None = None,
            dot_dtype: jnp.dtype | None = None) -> jax.Array:
    """q `[b, s, heads, d]` against k and v laid out as `kv_layout` ("btkd" for sequences,
    "bktd" for the KV cache), mask `[b, 1, s, t]`. Softmax in float32, normalised after the
    product with v: dividing `[b, s, heads, d]` instead of the `[b, heads, s, t]` probabilities
    saves a pass over the largest tensor. `dot_dtype` casts the dots' operands, already rounded to
    the compute dtype, just before each dot."""
    def operand(x: jax.Array) -> jax.Array:
        return x if dot_dtype is None else x.astype(dot_dtype)

    batch, q_len, heads, head_dim = q.shape
    kv_heads = k.shape[kv_layout.index("k")]
    groups = heads // kv_heads
    q = (q * head_dim**-0.5).reshape(batch, q_len, kv_heads, groups, head_dim)
    logits = jnp.einsum(f"bskgd,{kv_layout}->bkgst", operand(q), operand(k), preferred_element_type=jnp.float32)
    logits = jnp.where(mask[:, :, None], logits, jnp.finfo(jnp.float32).min)
    # Softmax is shift-invariant, so the max needs no gradient; a row with every key masked sees
    # all-equal logits and averages instead of producing NaN.
    weights = jnp.exp(logits - jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True)))
    denominator = jnp.sum(weights, axis=-1)
    if dropout_rate > 0.0 and dropout_rng is not None:
        keep = jax.random.bernoulli(dropout_rng, 1.0 - dropout_rate, weights.shape)
        weights = jnp.where(keep, weights / (1.0 - dropout_rate), 0.0)
    out = jnp.einsum(f"bkgst,{kv_layout}->bskgd", operand(weights.astype(v.dtype)), operand(v),
                     preferred_element_type=jnp.float32)
    out = out / jnp.moveaxis(denominator, -1, 1)[..., None]
    return out.astype(v.dtype).reshape(batch, q_len, heads, head_dim)


def cached_attention(q: jax.Array, k: jax.Array, v: jax.Array, k_cache: jax.Array, v_cache: jax.Array,
                     where: CacheQuery) -> jax.Array:
    """Queries q `[b, s, heads, d]` at slots `where.start + arange(s)` against the whole KV cache
    (keys and values `[b, kv_heads, capacity, d]`, already holding this call's keys and values k
    and v `[b, s, kv_heads, d]`), read in place.

    A step costs what the cache's capacity costs, so the sampler keeps the capacity at the filled
    part rounded up to a block (`phi1_jax.sampling` grows the cache as it decodes). Reading a
    prefix window instead was slower on every size measured: XLA copies a slice of the cache
    before a dot, every step and layer, and that copy cost more than the empty slots it spared.

    A call as long as the cache (the sampler's prefill, into a cache sized to the prompt) fills
    every slot, so it attends over its own k and v as a forward pass without cache does: causal
    blocks instead of the whole square, and no reads of the transposed cache."""
    if q.shape[1] == v_cache.shape[2]:
        # dynamic_update_slice clamps the write of a full-length call to slot 0, whatever start is.
        slots = jnp.arange(q.shape[1])
        return xla_attention(q, k, v, attention_mask(where.segment_ids, where.segment_ids, slots, slots))
    mask = attention_mask(where.segment_ids, where.kv_segment_ids, where.start + jnp.arange(q.shape[1]),
                          jnp.arange(v_cache.shape[2]))
    # XLA:CPU cannot run these batched bf16 x bf16 -> f32 dots inside the decode loop ("Unsupported
    # element type for DotThunk"); a product of two bfloat16 values is exact in float32, so
    # multiplying the same bfloat16 values in float32 gives the same numbers.
    upcast = q.dtype == jnp.bfloat16 and jax.default_backend() == "cpu"
    return _attend(q, k_cache, v_cache, mask, "bktd", dot_dtype=jnp.float32 if upcast else None)


def fused_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array | None) -> jax.Array:
    """`jax.nn.dot_product_attention` (jax's XLA implementation, see the module docstring); same
    contract as the reference."""
    scale = q.shape[-1] ** -0.5
    if mask is None:
        return jax.nn.dot_product_attention(q, k, v, scale=scale, is_causal=True)
    return jax.nn.dot_product_attention(q, k, v, scale=scale, mask=mask)
