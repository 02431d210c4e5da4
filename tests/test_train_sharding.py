"""The same steps on 1 device and on 8 simulated devices in three mesh shapes give the same losses,
and every parameter, Adam moment and batch is laid out as the rule table in phi1_jax.sharding says."""

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from phi1_jax import sharding
from phi1_jax.model_config import PhiConfig
from phi1_jax.train import build, global_batch
from train_testlib import stdlib_batches, tiny_train_config

MESHES = [(8, 1, 1), (2, 4, 1), (2, 2, 2)]


def _config(tmp_path, mesh_shape):
    config = tiny_train_config(str(tmp_path))
    # The pod settings: layers stacked by nn.scan (a `layers` axis on every block parameter) and remat.
    config.model.update(dict(scan_layers=True, remat_policy="full"))
    config.mesh.update(dict(zip(sharding.MESH_AXES, mesh_shape)))
    return config


def _train(config, devices, batches):
    mesh = sharding.make_mesh(config.mesh, devices)
    program = build(config, PhiConfig.from_dict(config.model), mesh)
    state = program.init()
    losses = []
    with sharding.activate(mesh):
        for batch in batches:
            state, metrics = program.step(state, global_batch(batch, program.batch_sharding))
            losses.append(float(metrics["loss"]))
    return losses, state, mesh


@pytest.fixture(scope="module")
def single_device_losses(tmp_path_factory):
    config = _config(tmp_path_factory.mktemp("one"), (1, 1, 1))
    losses, _, _ = _train(config, jax.devices()[:1], stdlib_batches(4, 8, 32))
    return losses


@pytest.mark.parametrize("mesh_shape", MESHES, ids=lambda s: "x".join(map(str, s)))
def test_sharded_steps_match_one_device(tmp_path, single_device_losses, mesh_shape):
    assert jax.device_count() == 8
    config = _config(tmp_path, mesh_shape)
    losses, state, mesh = _train(config, jax.devices(), stdlib_batches(4, 8, 32))
    np.testing.assert_allclose(losses, single_device_losses, rtol=1e-5)
    assert losses[-1] < losses[0]

    data, fsdp, tensor = mesh_shape
    # Written out from the rule table: embed->fsdp, heads/mlp/vocab->tensor, kv/layers replicated.
    expected = {
        ("embed_tokens", "embedding"): (P("tensor", "fsdp"), (256 // tensor, 64 // fsdp)),
        ("layers", "mlp", "fc1", "kernel"): (P(None, "fsdp", "tensor"), (2, 64 // fsdp, 256 // tensor)),
        ("layers", "mlp", "fc2", "kernel"): (P(None, "tensor", "fsdp"), (2, 256 // tensor, 64 // fsdp)),
        ("layers", "self_attn", "q_proj", "kernel"): (P(None, "fsdp", "tensor", None), (2, 64 // fsdp, 4 // tensor, 16)),
        ("layers", "self_attn", "dense", "kernel"): (P(None, "tensor", None, "fsdp"), (2, 4 // tensor, 16, 64 // fsdp)),
        ("layers", "input_layernorm", "scale"): (P(None, "fsdp"), (2, 64 // fsdp)),
        ("lm_head", "kernel"): (P("fsdp", "tensor"), (64 // fsdp, 256 // tensor)),
        ("lm_head", "bias"): (P("tensor"), (256 // tensor,)),
    }
    mu = state.opt_state[1][0].mu  # chain(clip, adamw): adamw's first state is ScaleByAdamState
    for path, (spec, shard_shape) in expected.items():
        for tree in (state.params, mu):
            leaf = tree
            for key in path:
                leaf = leaf[key]
            assert _normalized(leaf.sharding.spec) == _normalized(spec), (path, leaf.sharding.spec)
            assert leaf.sharding.mesh.shape == mesh.shape
            assert leaf.addressable_shards[0].data.shape == shard_shape, path

    batch = global_batch(stdlib_batches(1, 8, 32)[0], sharding.batch_sharding(mesh))
    assert batch["decoder_input_tokens"].addressable_shards[0].data.shape == (8 // (data * fsdp), 32)


def _normalized(spec: P) -> tuple:
    """PartitionSpec without trailing Nones (P('a', None) and P('a') are the same layout)."""
    entries = list(spec)
    while entries and entries[-1] is None:
        entries.pop()
    return tuple(entries)
