"""AdamW with the paper's schedule (linear warmup, then linear decay; cosine as an option),
global-norm clipping, and weight decay on matmul kernels only.

All of it reads `config.train` (see `phi1_jax.default_config`):
lr, warmup_steps, schedule, end_lr_fraction, steps / schedule_steps, weight_decay,
decay_biases_norms_embeddings, b1, b2, eps, grad_clip.
"""

from __future__ import annotations

from typing import Any, Mapping

import jax
import optax

SCHEDULES = ("linear", "cosine", "constant")


def learning_rate_schedule(train: Mapping[str, Any]) -> optax.Schedule:
    """Linear warmup from 0 to `lr`, then decay to `lr * end_lr_fraction` at `schedule_steps`.

    `schedule_steps` (0: `steps`) is the decay horizon, separate from how many steps are run:
    the paper ran 24k steps of a 36k-step schedule.
    """
    if train["schedule"] not in SCHEDULES:
        raise ValueError(f"train.schedule must be one of {SCHEDULES}, got {train['schedule']!r}")
    peak = float(train["lr"])
    warmup = int(train["warmup_steps"])
    horizon = int(train["schedule_steps"] or train["steps"])
    decay_steps = max(horizon - warmup, 1)
    end = peak * float(train["end_lr_fraction"])
    if train["schedule"] == "constant":
        decay = optax.constant_schedule(peak)
    elif train["schedule"] == "cosine":
        decay = optax.cosine_decay_schedule(peak, decay_steps, alpha=float(train["end_lr_fraction"]))
    else:
        decay = optax.linear_schedule(peak, end, decay_steps)
    return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), decay], [warmup])


def weight_decay_mask(params: Any, decay_everything: bool = False) -> Any:
    """True for the leaves that weight decay applies to: matmul kernels, not biases, LayerNorm
    scales or the embedding table (GPT-style practice), unless `decay_everything`."""
    def decays(path: tuple[Any, ...], _: Any) -> bool:
        # The last dict key names the leaf; boxed (nn.Partitioned) leaves add a `.value` step after it.
        names = [entry.key for entry in path if isinstance(entry, jax.tree_util.DictKey)]
        return decay_everything or names[-1] == "kernel"

    return jax.tree_util.tree_map_with_path(decays, params)


def make_optimizer(train: Mapping[str, Any]) -> optax.GradientTransformation:
    """clip(global norm) -> AdamW(schedule, masked decay). `grad_clip <= 0` disables clipping."""
    adamw = optax.adamw(
        learning_rate_schedule(train),
        b1=float(train["b1"]),
        b2=float(train["b2"]),
        eps=float(train["eps"]),
        weight_decay=float(train["weight_decay"]),
        mask=lambda params: weight_decay_mask(params, bool(train["decay_biases_norms_embeddings"])),
    )
    if float(train["grad_clip"]) <= 0:
        return adamw
    return optax.chain(optax.clip_by_global_norm(float(train["grad_clip"])), adamw)
