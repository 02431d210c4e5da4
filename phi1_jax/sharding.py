"""The one table of logical-axis rules and the device mesh it maps onto.

Parameters carry logical axis names (`phi1_jax.model`: embed, heads, kv, mlp, vocab, layers) and
activations are constrained with batch/length/...; `RULES` says which mesh axis each one is split
over. The optimizer state is laid out like the parameters it mirrors, so it needs no rules of its own.

Mesh axes, outermost first (`config.mesh`, -1 = the remaining devices):
- data:   pure data parallelism (parameters replicated).
- fsdp:   data parallelism that also shards parameters and optimizer state (ZeRO-3 style).
- tensor: Megatron-style model parallelism over heads and the MLP's hidden dimension.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator, Mapping, Sequence

import flax.linen as nn
import jax
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "tensor")

# Order matters: flax assigns rules top to bottom and never reuses a mesh axis within one array,
# so an activation `(batch, length, embed)` gets fsdp on its batch, not on embed.
RULES: tuple[tuple[str, Any], ...] = (
    ("batch", ("data", "fsdp")),
    ("length", None),
    ("layers", None),
    ("vocab", "tensor"),
    ("heads", "tensor"),
    ("mlp", "tensor"),
    ("kv", None),
    ("embed", "fsdp"),
)


def mesh_shape(axes: Mapping[str, int], num_devices: int) -> tuple[int, ...]:
    """Resolves `{data, fsdp, tensor}` sizes (at most one -1) against the number of devices."""
    unknown = set(axes) - set(MESH_AXES)
    if unknown:
        raise ValueError(f"unknown mesh axes {sorted(unknown)}; the mesh axes are {MESH_AXES}")
    sizes = [int(axes.get(name, 1)) for name in MESH_AXES]
    if sizes.count(-1) > 1 or any(s == 0 or s < -1 for s in sizes):
        raise ValueError(f"mesh {dict(zip(MESH_AXES, sizes))}: sizes must be positive, one may be -1")
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if num_devices % known:
            raise ValueError(f"mesh {dict(zip(MESH_AXES, sizes))} does not divide {num_devices} devices")
        sizes[sizes.index(-1)] = num_devices // known
    if math.prod(sizes) != num_devices:
        raise ValueError(f"mesh {dict(zip(MESH_AXES, sizes))} needs {math.prod(sizes)} devices, "
                         f"there are {num_devices}")
    return tuple(sizes)


def make_mesh(axes: Mapping[str, int], devices: Sequence[jax.Device] | None = None) -> Mesh:
    """The training mesh over `devices` (default: all). `jax.make_mesh` orders the devices so the
    inner axes ride the fastest links; over several TPU slices (devices with a `slice_index`), the
    `data` axis spans the slices, so only data-parallel gradients cross the data-centre network."""
    devices = jax.devices() if devices is None else list(devices)
    shape = mesh_shape(axes, len(devices))
    auto = (jax.sharding.AxisType.Auto,) * len(MESH_AXES)
    slices = len({getattr(device, "slice_index", 0) for device in devices})
    if slices == 1:
        return jax.make_mesh(shape, MESH_AXES, axis_types=auto, devices=devices)
    if shape[0] % slices:
        raise ValueError(f"mesh {dict(zip(MESH_AXES, shape))} over {slices} TPU slices: mesh.data must be a "
                         f"multiple of the slices (e.g. --config.mesh.data={slices} --config.mesh.fsdp=-1)")
    within = (shape[0] // slices, *shape[1:])
    grid = mesh_utils.create_hybrid_device_mesh(within, (slices, 1, 1), devices)
    return Mesh(grid, MESH_AXES, axis_types=auto)


@contextlib.contextmanager
def activate(mesh: Mesh) -> Iterator[None]:
    """Makes `mesh` and `RULES` current, so the model's activation constraints take effect."""
    with jax.set_mesh(mesh), nn.logical_axis_rules(RULES):
        yield


def logical_to_sharding(logical_specs: Any, mesh: Mesh) -> Any:
    """A tree of `PartitionSpec`s over logical names -> a tree of `NamedSharding`s on `mesh`."""
    return nn.logical_to_mesh_sharding(logical_specs, mesh, list(RULES))


def params_sharding(boxed_params: Any, mesh: Mesh) -> Any:
    """NamedShardings for a (possibly abstract) tree of `nn.Partitioned` parameters."""
    return logical_to_sharding(nn.get_partition_spec(boxed_params), mesh)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """`[batch, length]` token arrays: rows split over every data-parallel axis."""
    return logical_to_sharding(PartitionSpec("batch", "length"), mesh)


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())
