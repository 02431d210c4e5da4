"""Attention math for `phi1_jax.model`: the mask that serves packing, padding and the KV cache
alike, and the two implementations chosen by `config.model.attention`.

- `xla`: a plain einsum reference with float32 softmax and attention-probability dropout; the
  implementation tests compare against.
- `dot_product`: `jax.nn.dot_product_attention`, which XLA lowers to cuDNN flash attention on
  GPUs. It has no attention dropout, so it refuses `attention_dropout > 0` while training.

Every key slot carries a segment id (0 = empty or padding) and a slot index; a query attends to a
key when both are in the same non-zero segment and the key's slot is not after the query's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def attention_mask(
    q_segment_ids: jax.Array, kv_segment_ids: jax.Array, q_slots: jax.Array, kv_slots: jax.Array
) -> jax.Array:
    """Boolean `[batch, 1, q_len, kv_len]` mask; segments `[batch, len]`, slots `[len]`."""
    same_segment = q_segment_ids[:, :, None] == kv_segment_ids[:, None, :]
    occupied = (kv_segment_ids != 0)[:, None, :]
    causal = (kv_slots[None, :] <= q_slots[:, None])[None]
    return (same_segment & occupied & causal)[:, None]


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

    Softmax in float32, normalised after the product with v: dividing `[b, s, heads, d]` instead of
    the `[b, heads, s, t]` probabilities saves a pass over the largest tensor in both directions
    (about 8% of a CPU train step)."""
    batch, q_len, heads, head_dim = q.shape
    kv_heads = k.shape[2]
    groups = heads // kv_heads
    q = (q * head_dim**-0.5).reshape(batch, q_len, kv_heads, groups, head_dim)
    logits = jnp.einsum("bskgd,btkd->bkgst", q, k, preferred_element_type=jnp.float32)
    if mask is None:
        mask = jnp.tril(jnp.ones((q_len, k.shape[1]), dtype=bool))[None, None]
    logits = jnp.where(mask[:, :, None], logits, jnp.finfo(jnp.float32).min)
    # Softmax is shift-invariant, so the max needs no gradient; a row with every key masked sees
    # all-equal logits and averages instead of producing NaN.
    weights = jnp.exp(logits - jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True)))
    denominator = jnp.sum(weights, axis=-1)
    if dropout_rate > 0.0 and dropout_rng is not None:
        keep = jax.random.bernoulli(dropout_rng, 1.0 - dropout_rate, weights.shape)
        weights = jnp.where(keep, weights / (1.0 - dropout_rate), 0.0)
    out = jnp.einsum("bkgst,btkd->bskgd", weights.astype(v.dtype), v, preferred_element_type=jnp.float32)
    out = out / jnp.moveaxis(denominator, -1, 1)[..., None]
    return out.astype(v.dtype).reshape(batch, q_len, heads, head_dim)


def fused_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array | None) -> jax.Array:
    """`jax.nn.dot_product_attention` (cuDNN flash attention on GPU); same contract as the reference."""
    scale = q.shape[-1] ** -0.5
    if mask is None:
        return jax.nn.dot_product_attention(q, k, v, scale=scale, is_causal=True)
    return jax.nn.dot_product_attention(q, k, v, scale=scale, mask=mask)
