"""The math of one training step: microbatch accumulation, overfitting, the schedule and the decay mask."""

import functools

import jax
import numpy as np
import pytest

from phi1_jax.optimizer import learning_rate_schedule, make_optimizer, weight_decay_mask
from phi1_jax.train_step import init_state, train_step
from phi1_jax.model import init_params
from train_testlib import stdlib_batches, tiny_model_config, tiny_train_config


def _run(config, train, microbatches, batches):
    tx = make_optimizer(train)
    state = jax.jit(lambda: init_state(config, tx, seed=0))()
    step = jax.jit(functools.partial(train_step, config, tx, microbatches))
    losses = []
    for batch in batches:
        state, metrics = step(state, batch)
        losses.append(float(metrics["loss"]))
    return losses, state


def test_four_microbatches_of_two_equal_one_batch_of_eight(tmp_path):
    config = tiny_model_config()
    train = tiny_train_config(str(tmp_path)).train
    batches = stdlib_batches(2, 8, 32)
    full_losses, full = _run(config, train, 1, batches)
    micro_losses, micro = _run(config, train, 4, batches)
    np.testing.assert_allclose(micro_losses, full_losses, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(micro.params), jax.tree.leaves(full.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    # The step really changed the parameters (an all-equal no-op would also pass the above).
    initial = jax.jit(lambda: init_state(config, make_optimizer(train), seed=0))()
    assert not np.allclose(np.asarray(full.params["lm_head"]["kernel"]),
                           np.asarray(initial.params["lm_head"]["kernel"]))


def test_tiny_model_overfits_a_few_hundred_tokens(tmp_path):
    config = tiny_model_config()
    train = tiny_train_config(str(tmp_path), lr=3e-3, warmup_steps=10, steps=150, grad_clip=1.0).train
    batch = stdlib_batches(1, 8, 32)[0]  # 8 x 32 = 256 tokens, seen over and over
    losses, _ = _run(config, train, 1, [batch] * 150)
    assert losses[0] > 4.0  # ~ln(256) at init: the model knew nothing
    assert losses[-1] < 0.1, losses[-10:]


def test_schedule_warms_up_then_decays_linearly(tmp_path):
    train = tiny_train_config(str(tmp_path), lr=1.0, warmup_steps=10, steps=110, end_lr_fraction=0.1).train
    schedule = learning_rate_schedule(train)
    assert float(schedule(0)) == 0.0
    assert float(schedule(5)) == pytest.approx(0.5)
    assert float(schedule(10)) == pytest.approx(1.0)
    assert float(schedule(60)) == pytest.approx(0.55)
    assert float(schedule(110)) == pytest.approx(0.1)
    train.schedule = "cosine"
    assert float(learning_rate_schedule(train)(60)) == pytest.approx(0.55)
    train.schedule = "warmup_only"
    with pytest.raises(ValueError, match="train.schedule"):
        learning_rate_schedule(train)


def test_weight_decay_skips_biases_norms_and_embeddings():
    params = init_params(tiny_model_config(), jax.random.PRNGKey(0))
    mask = weight_decay_mask(params)
    assert mask["layers_0"]["mlp"]["fc1"]["kernel"] and mask["lm_head"]["kernel"]
    assert not mask["layers_0"]["mlp"]["fc1"]["bias"]
    assert not mask["layers_0"]["input_layernorm"]["scale"]
    assert not mask["embed_tokens"]["embedding"]
    assert all(jax.tree.leaves(weight_decay_mask(params, decay_everything=True)))
