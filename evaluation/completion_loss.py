"""Held-out loss of a model on completions given their prompts (DESIGN.md data flow: the checkpoint
side of "sample with KV cache -> sandbox -> pass@k"): the mean negative log-likelihood, in nats per
token, of each completion's tokens conditioned on its prompt.

pass@1 of a small model is often zero, which says nothing about which training data helped; the
loss on HumanEval's canonical solutions does (the data ablation, `evaluation.ablation`, reports
both). Rows are right-padded into fixed-length batches with segment id 0 on the padding, so one
compiled function serves every batch; a pair longer than the model's context keeps the end of the
prompt, and a completion that alone overflows is scored on its first tokens (the counts say so).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from phi1_jax.model import Phi
from phi1_jax.model_config import PhiConfig


@dataclass(frozen=True)
class CompletionLoss:
    nats_per_token: float
    tokens: int  # completion tokens scored
    pairs: int
    truncated_completions: int  # completions longer than the context, scored on their first tokens


@functools.partial(jax.jit, static_argnames=("config",))
def _token_nll(params: Any, tokens: jax.Array, segment_ids: jax.Array, positions: jax.Array, *,
               config: PhiConfig) -> jax.Array:
    """Negative log-likelihood of tokens[:, 1:] given what precedes them, `[batch, seq - 1]`."""
    logits = Phi(config).apply({"params": params}, tokens[:, :-1], positions=positions[:, :-1],
                               segment_ids=segment_ids[:, :-1])
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(log_probs, tokens[:, 1:, None], axis=-1)[..., 0]


def encode_pair(encode: Callable[[str], Sequence[int]], prompt: str, completion: str) -> tuple[list[int], list[int]]:
    """(prompt ids, completion ids) as the model sees them in training, where the text is
    tokenized whole: the completion is what the whole text's tokens add after the longest prefix
    they share with the prompt's own tokens (a token may straddle the boundary)."""
    whole, alone = list(encode(prompt + completion)), list(encode(prompt))
    shared = 0
    while shared < min(len(whole), len(alone)) and whole[shared] == alone[shared]:
        shared += 1
    if shared == 0:
        raise ValueError(f"the prompt's tokens share no prefix with the whole text's: {prompt[:40]!r}")
    return whole[:shared], whole[shared:]


def fit_to_context(prompt: Sequence[int], completion: Sequence[int], max_len: int) -> tuple[list[int], int, bool]:
    """(tokens, index of the first completion token, completion truncated?) within `max_len`: the
    prompt keeps its end (at least one token, so the first completion token has a context)."""
    if not prompt:
        raise ValueError("a completion needs at least one prompt token to be conditioned on")
    if not completion:
        raise ValueError("an empty completion has no tokens to score")
    keep = min(len(completion), max_len - 1)
    prompt_keep = min(len(prompt), max_len - keep)
    tokens = list(prompt[len(prompt) - prompt_keep:]) + list(completion[:keep])
    return tokens, prompt_keep, keep < len(completion)


def completion_loss(config: PhiConfig, params: Any, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], *,
                    batch_size: int = 8, max_len: int | None = None) -> CompletionLoss:
    """Mean NLL of every completion token over all `(prompt_ids, completion_ids)` pairs."""
    if not pairs:
        raise ValueError("no (prompt, completion) pairs to score")
    max_len = max_len or config.max_position_embeddings
    fitted = [fit_to_context(p, c, max_len) for p, c in pairs]
    width = max(len(tokens) for tokens, _, _ in fitted)
    total, count = 0.0, 0
    for start in range(0, len(fitted), batch_size):
        chunk = fitted[start:start + batch_size]
        tokens = np.zeros((batch_size, width), np.int32)
        segments = np.zeros((batch_size, width), np.int32)
        weights = np.zeros((batch_size, width - 1), np.float32)
        for row, (ids, first, _) in enumerate(chunk):
            tokens[row, :len(ids)] = ids
            segments[row, :len(ids)] = 1
            # Target t+1 is predicted at input position t: completion targets start at first - 1.
            weights[row, first - 1:len(ids) - 1] = 1.0
        positions = np.broadcast_to(np.arange(width, dtype=np.int32), (batch_size, width))
        nll = np.asarray(_token_nll(params, tokens, segments, positions, config=config))
        total += float((nll * weights).sum())
        count += int(weights.sum())
    return CompletionLoss(total / count, count, len(pairs), sum(t for _, _, t in fitted))
