"""The pure math of training: the train state, the loss on a packed seqio batch, one optimizer step
with gradient accumulation over microbatches, and the eval loss. No I/O here (see `phi1_jax.train`).

Batches are dicts of `[batch, seq]` int32 arrays with the seqio decoder feature names. The loss is
the sum of token cross-entropies weighted by `decoder_loss_weights`, divided by the sum of the
weights over the WHOLE global batch, so k microbatches of b rows give the same loss and gradient
as one batch of k*b rows.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax

from phi1_jax.model import Phi, init_params
from phi1_jax.model_config import PhiConfig

Batch = dict[str, jax.Array]


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Any
    opt_state: Any
    rng: jax.Array  # raw uint32 key; the dropout key of a step is fold_in(rng, step)


def init_state(config: PhiConfig, tx: optax.GradientTransformation, seed: int, *, params: Any = None,
               boxed: bool = False) -> TrainState:
    """A fresh state; `params` (e.g. a pretrained checkpoint for finetuning) replace the random init.

    `boxed=True` keeps the `nn.Partitioned` boxes on the parameters and so on the Adam moments
    that mirror them: under `jax.eval_shape` that is how `phi1_jax.train` reads all the shardings.
    """
    init_rng, dropout_rng = jax.random.split(jax.random.PRNGKey(seed))
    if params is None:
        params = init_params(config, init_rng, boxed=boxed)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                      rng=dropout_rng)


def loss_sums(config: PhiConfig, params: Any, batch: Batch, dropout_rng: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    """(sum of weighted token losses, sum of weights); dropout is on when `dropout_rng` is given.

    A batch without `decoder_segment_ids` / `decoder_positions` (unpacked rows) gets plain causal
    attention, which fused kernels (cuDNN flash attention) run without a materialised mask."""
    logits = Phi(config).apply(
        {"params": params},
        batch["decoder_input_tokens"],
        positions=batch.get("decoder_positions"),
        segment_ids=batch.get("decoder_segment_ids"),
        deterministic=dropout_rng is None,
        rngs=None if dropout_rng is None else {"dropout": dropout_rng},
    )
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["decoder_target_tokens"])
    weights = batch["decoder_loss_weights"].astype(jnp.float32)
    return jnp.sum(losses * weights), jnp.sum(weights)


def split_microbatches(batch: Batch, microbatches: int) -> Batch:
    """`[B, T]` -> `[k, B/k, T]` with microbatch i = rows i, i+k, i+2k, ...: every device keeps
    rows of its own shard in every microbatch, so the split moves no data between devices."""
    def split(x: jax.Array) -> jax.Array:
        rows = x.shape[0]
        if rows % microbatches:
            raise ValueError(f"batch of {rows} rows does not split into {microbatches} microbatches")
        return jnp.swapaxes(x.reshape(rows // microbatches, microbatches, *x.shape[1:]), 0, 1)

    return jax.tree.map(split, batch)


def train_step(config: PhiConfig, tx: optax.GradientTransformation, microbatches: int,
               state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimizer step on the global batch, accumulating float32 gradients over microbatches."""
    step_rng = jax.random.fold_in(state.rng, state.step)
    dropout = config.resid_dropout > 0 or config.attention_dropout > 0 or config.embd_dropout > 0
    grad_fn = jax.value_and_grad(lambda p, b, r: loss_sums(config, p, b, r if dropout else None), has_aux=True)

    def accumulate(carry: tuple[Any, jax.Array, jax.Array], xs: tuple[Batch, jax.Array]):
        grads, loss_sum, weight_sum = carry
        micro, index = xs
        micro = jax.tree.map(lambda x: nn.with_logical_constraint(x, ("batch", "length")), micro)
        (loss, weight), g = grad_fn(state.params, micro, jax.random.fold_in(step_rng, index))
        grads = jax.tree.map(lambda a, b: a + b.astype(jnp.float32), grads, g)
        return (grads, loss_sum + loss, weight_sum + weight), None

    zeros = jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), state.params)
    init = (zeros, jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32))
    if microbatches == 1:
        (grads, loss_sum, weight_sum), _ = accumulate(init, (batch, jnp.zeros((), jnp.int32)))
    else:
        xs = (split_microbatches(batch, microbatches), jnp.arange(microbatches))
        (grads, loss_sum, weight_sum), _ = jax.lax.scan(accumulate, init, xs)

    denominator = jnp.maximum(weight_sum, 1.0)
    grads = jax.tree.map(lambda g: g / denominator, grads)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {"loss": loss_sum / denominator, "grad_norm": optax.global_norm(grads), "tokens": weight_sum}
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics


def eval_step(config: PhiConfig, microbatches: int, params: Any, batch: Batch) -> tuple[jax.Array, jax.Array]:
    """(sum of token losses, number of target tokens), to be summed over eval batches. The batch
    is taken in the train step's microbatches: the logits of a whole global batch (phi-1 on a v4-32:
    64 rows x 2048 x 51200 float32 per chip, 27 GB) need not fit where the train step does."""
    if microbatches == 1:
        return loss_sums(config, params, batch, None)

    def accumulate(carry: tuple[jax.Array, jax.Array], micro: Batch) -> tuple[tuple[jax.Array, jax.Array], None]:
        micro = jax.tree.map(lambda x: nn.with_logical_constraint(x, ("batch", "length")), micro)
        loss, weight = loss_sums(config, params, micro, None)
        return (carry[0] + loss, carry[1] + weight), None

    zeros = (jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32))
    return jax.lax.scan(accumulate, zeros, split_microbatches(batch, microbatches))[0]
