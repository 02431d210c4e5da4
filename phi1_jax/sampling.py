"""Batched autoregressive sampling with the KV cache: the generator behind evaluation's checkpoint
front-end and the demo's greedy sample.

Prompts of different lengths are left-padded into one batch; padding slots get segment id 0 so no
token attends to them, and positions count real tokens only, so every row decodes exactly as it
would alone. One jitted function prefills the cache and then decodes one token per step in a
`lax.while_loop` until every row has produced EOS or `max_new_tokens` tokens.
"""

from __future__ import annotations

import functools
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from phi1_jax.model import Phi, init_cache
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


@functools.partial(jax.jit, static_argnames=("config", "max_new_tokens", "temperature", "top_p", "eos_id"))
def _sample(params: Any, tokens: jax.Array, segment_ids: jax.Array, positions: jax.Array, rng: jax.Array, *,
            config: PhiConfig, max_new_tokens: int, temperature: float, top_p: float,
            eos_id: Optional[int]) -> tuple[jax.Array, jax.Array]:
    model = Phi(config)
    batch, prompt_len = tokens.shape
    cache = init_cache(config, batch, prompt_len + max_new_tokens)
    logits, cache = model.apply({"params": params}, tokens, positions=positions, segment_ids=segment_ids,
                                cache=cache)
    out = jnp.zeros((batch, max_new_tokens), jnp.int32)
    lengths = jnp.full((batch,), max_new_tokens, jnp.int32)

    def keep_going(state: tuple) -> jax.Array:
        step, _, _, _, done, _, _, _ = state
        return (step < max_new_tokens) & ~jnp.all(done)

    def decode_one(state: tuple) -> tuple:
        step, cache, last_logits, next_pos, done, out, lengths, rng = state
        rng, step_rng = jax.random.split(rng)
        token = choose_tokens(last_logits, step_rng, temperature, top_p)
        out = out.at[:, step].set(jnp.where(done, 0, token))
        if eos_id is not None:
            finished = ~done & (token == eos_id)
            lengths = jnp.where(finished, step, lengths)
            done = done | finished
        logits, cache = model.apply({"params": params}, token[:, None], positions=next_pos[:, None],
                                    segment_ids=jnp.ones((batch, 1), jnp.int32), cache=cache)
        return step + 1, cache, logits[:, -1], next_pos + 1, done, out, lengths, rng

    state = (jnp.zeros((), jnp.int32), cache, logits[:, -1], positions[:, -1] + 1,
             jnp.zeros((batch,), bool), out, lengths, rng)
    final = jax.lax.while_loop(keep_going, decode_one, state)
    return final[5], final[6]


def generate(config: PhiConfig, params: Any, prompts: Sequence[Sequence[int]], *, max_new_tokens: int,
             temperature: float = 0.0, top_p: float = 1.0, eos_id: Optional[int] = None,
             seed: int = 0) -> list[list[int]]:
    """New tokens for each prompt (EOS itself not included), at most `max_new_tokens` each."""
    if not prompts:
        return []
    if max_new_tokens <= 0:
        raise ValueError(f"max_new_tokens must be positive, got {max_new_tokens}")
    if temperature < 0 or not 0 < top_p <= 1:
        raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {temperature}, {top_p}")
    empty = [i for i, prompt in enumerate(prompts) if len(prompt) == 0]
    if empty:
        raise ValueError(f"prompts {empty} are empty; every prompt needs at least one token")
    longest = max(len(p) for p in prompts)
    prompt_len = -(-longest // _PROMPT_BUCKET) * _PROMPT_BUCKET
    tokens = np.zeros((len(prompts), prompt_len), np.int32)
    segment_ids = np.zeros_like(tokens)
    for row, prompt in enumerate(prompts):
        tokens[row, prompt_len - len(prompt):] = prompt
        segment_ids[row, prompt_len - len(prompt):] = 1
    positions = np.maximum(np.cumsum(segment_ids, axis=1) - 1, 0).astype(np.int32)
    out, lengths = _sample(params, tokens, segment_ids, positions, jax.random.key(seed), config=config,
                           max_new_tokens=max_new_tokens, temperature=float(temperature), top_p=float(top_p),
                           eos_id=eos_id)
    out, lengths = np.asarray(out), np.asarray(lengths)
    return [out[row, :lengths[row]].tolist() for row in range(len(prompts))]
