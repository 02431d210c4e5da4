"""TPU slice names -> abstract TPU devices, so programs compile for a pod on a CPU host.

`tpu/create.sh` and `tpu/launch.sh` name a slice the way gcloud does (`v4-32`, `v5litepod-256`,
`v5p-128`, `v6e-256`); `phi1_jax.preflight` turns that name into the devices of the slice with
`jax.experimental.topologies` (libtpu installed, no TPU needed) and compiles the run's programs
for them. The naming rules:

- v4 and v5p count TensorCores: a chip has two, fused into one JAX device ("megacore"), so
  `v4-32` is 16 chips and 16 devices, a 3-D torus of 2x2x4 chips on 4 hosts of 4 chips.
- v5e (`v5litepod-N`, also written `v5e-N`) and v6e count chips: `v5litepod-256` is a 16x16
  grid of 256 chips on 64 hosts of 4 (slices of 8 or fewer chips are one host).

HBM per chip is Google's published capacity; the compiler's own limit is a little lower (it
reports both when a program does not fit).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import sys
import tempfile
from typing import Any, Iterator

GIB = 2**30


@dataclasses.dataclass(frozen=True)
class TpuGeneration:
    name: str  # the libtpu topology prefix
    counts_cores: bool  # the slice name counts TensorCores (two per chip), not chips
    dims: int  # torus dimensions
    hbm_bytes: int  # per chip
    chip_config: str  # libtpu's chip configuration: megacore fuses a chip's two cores into one device


GENERATIONS = {
    "v4": TpuGeneration("v4", counts_cores=True, dims=3, hbm_bytes=32 * GIB, chip_config="megacore"),
    "v5p": TpuGeneration("v5p", counts_cores=True, dims=3, hbm_bytes=95 * GIB, chip_config="megacore"),
    "v5litepod": TpuGeneration("v5e", counts_cores=False, dims=2, hbm_bytes=16 * GIB, chip_config="default"),
    "v5e": TpuGeneration("v5e", counts_cores=False, dims=2, hbm_bytes=16 * GIB, chip_config="default"),
    "v6e": TpuGeneration("v6e", counts_cores=False, dims=2, hbm_bytes=32 * GIB, chip_config="default"),
}
_CHIPS_PER_HOST = 4
_SINGLE_HOST_CHIPS = 8  # v5e/v6e slices up to this size are one host


@dataclasses.dataclass(frozen=True)
class Slice:
    """One TPU slice type, as gcloud names it and as libtpu lays it out."""

    accelerator: str  # e.g. v4-32
    generation: TpuGeneration
    chips: int
    torus: tuple[int, ...]  # chips along each dimension

    @property
    def topology_name(self) -> str:
        return f"{self.generation.name}:{'x'.join(map(str, self.torus))}"

    @property
    def hbm_bytes(self) -> int:
        return self.generation.hbm_bytes

    @property
    def chips_per_host_bounds(self) -> tuple[int, int, int]:
        if self.generation.dims == 2 and self.chips <= _SINGLE_HOST_CHIPS:
            return (*self.torus, 1)
        return (2, 2, 1)


def _torus(chips: int, dims: int) -> tuple[int, ...]:
    """Google's slice shapes: from one chip (2-D) or a 2x2x1 host (3-D), double the last of the
    smallest dimensions until the chips are placed (v4-32: 2x2x4, v5p-128: 4x4x4, v5e-256: 16x16)."""
    shape = [1, 1] if dims == 2 else [2, 2, 1]
    while shape[0] * shape[1] * (shape[2] if dims == 3 else 1) < chips:
        smallest = min(shape)
        shape[max(i for i, size in enumerate(shape) if size == smallest)] *= 2
    return tuple(shape)


def parse_slice(accelerator: str) -> Slice:
    """`v4-32`, `v5litepod-256`, `v5e-256`, `v5p-128`, `v6e-64` -> its `Slice`; a clear ValueError else."""
    match = re.fullmatch(r"(v[0-9]+[a-z]*)-([0-9]+)", accelerator)
    known = ", ".join(sorted(GENERATIONS))
    if not match or match.group(1) not in GENERATIONS:
        raise ValueError(f"unknown TPU type {accelerator!r}: expected <generation>-<size> with a generation of "
                         f"{known}, e.g. v4-32, v5litepod-256, v5p-128, v6e-256")
    generation, size = GENERATIONS[match.group(1)], int(match.group(2))
    chips = size // 2 if generation.counts_cores else size
    smallest = 4 if generation.dims == 3 else 1  # a 3-D slice is at least one 2x2x1 host
    if chips < smallest or chips & (chips - 1) or (generation.counts_cores and size % 2):
        unit = "TensorCores (two per chip)" if generation.counts_cores else "chips"
        raise ValueError(f"TPU type {accelerator!r}: {size} {unit} is not a slice size (a power of two)")
    return Slice(accelerator, generation, chips, _torus(chips, generation.dims))


def abstract_devices(accelerator: str, slices: int = 1) -> list[Any]:
    """The JAX devices of `slices` slices of `accelerator`, for compiling only (no TPU needed).
    Raises ImportError without libtpu and ValueError for a name or slice count libtpu refuses."""
    spec = parse_slice(accelerator)
    import jax

    try:
        import libtpu  # noqa: F401  # what compiles for TPU; only its presence is checked here
    except ImportError as error:
        raise ImportError("compiling for a TPU on this host needs libtpu: "
                          "pip install -c constraints.txt libtpu (or pip install -e '.[test]')") from error
    os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")  # a CPU host has no TPU metadata server to ask
    # libtpu locks /tmp/libtpu_lockfile so that two processes cannot drive one TPU; compiling only,
    # several processes (parallel tests, a preflight beside a benchmark) may load it at once.
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    from jax.experimental import topologies

    with _libtpu_log() as log:
        try:
            topology = topologies.get_topology_desc(
                platform="tpu", topology_name=spec.topology_name, chip_config_name=spec.generation.chip_config,
                chips_per_host_bounds=spec.chips_per_host_bounds, num_slices=slices, wrap=(False,) * 3)
        except (RuntimeError, ValueError, jax.errors.JaxRuntimeError) as error:
            raise ValueError(f"libtpu cannot lay out {slices} x {accelerator} ({spec.topology_name}): {error}; "
                             f"its log: {log.read().strip()[-500:]}") from error
    return list(topology.devices)


@contextlib.contextmanager
def _libtpu_log() -> Iterator[Any]:
    """libtpu's start-up log (a page of warnings about the TPU metadata a CPU host lacks), written
    by C++ to file descriptor 2, into a temporary file instead: readable when the layout fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile("w+") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield log
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
