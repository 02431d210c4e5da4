"""Rotary position embedding as phi-1 uses it: on the first `rotary_dim` dims of each head only,
in the NeoX split-halves layout (`rotate_half`), with positions given per token so that packed
documents restart at 0. Pure functions, used by `phi1_jax.attention`."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def rotary_angles(positions: jax.Array, rotary_dim: int, theta: float) -> tuple[jax.Array, jax.Array]:
    """cos and sin `[batch, seq, rotary_dim]` in float32 for integer `positions` `[batch, seq]`."""
    inv_freq = 1.0 / (theta ** (jnp.arange(0, rotary_dim, 2, dtype=jnp.float32) / rotary_dim))
    freqs = positions.astype(jnp.float32)[..., None] * inv_freq
    angles = jnp.concatenate([freqs, freqs], axis=-1)
    return jnp.cos(angles), jnp.sin(angles)


def _rotate_half(x: jax.Array) -> jax.Array:
    first, second = jnp.split(x, 2, axis=-1)
    return jnp.concatenate([-second, first], axis=-1)


def apply_partial_rotary(x: jax.Array, cos: jax.Array, sin: jax.Array) -> jax.Array:
    """Rotates the first `cos.shape[-1]` dims of `x` `[batch, seq, heads, head_dim]`; the rest pass."""
    rotary_dim = cos.shape[-1]
    x_rot, x_pass = x[..., :rotary_dim], x[..., rotary_dim:]
    x_rot = x_rot.astype(jnp.float32)
    cos, sin = cos[:, :, None, :], sin[:, :, None, :]
    rotated = (x_rot * cos + _rotate_half(x_rot) * sin).astype(x.dtype)
    return jnp.concatenate([rotated, x_pass], axis=-1)
