"""What a compiled program costs one chip: its memory by kind, its FLOPs, and the collectives in its
optimized HLO. Read by `phi1_jax.preflight` from programs compiled for (abstract) TPU devices;
nothing here runs a program.

Memory follows XLA's `memory_analysis()`: arguments and outputs (donated arguments are counted
once: outputs alias them), temporaries, and the generated code, all per device. FLOPs come from
`cost_analysis()`, which counts a loop's body once (a scanned layer stack or microbatch loop is
undercounted by its trip count); collectives are counted where they appear in the HLO text, so
one inside a loop counts once, not once per iteration.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import jax
import numpy as np

COLLECTIVES = ("all-gather", "all-reduce", "reduce-scatter", "all-to-all", "collective-permute")
# `%x = bf16[128,384]{1,0:T(8,128)} all-gather(...)`, also the async `-start` forms (a tuple type).
_INSTRUCTION = re.compile(r"=\s*(?P<type>\(.*?\)|\S+)\s+(?P<op>" + "|".join(COLLECTIVES) + r")(?:-start)?\(")
_ARRAY = re.compile(r"\b(?P<dtype>pred|[a-z]+[0-9]+)\[(?P<dims>[0-9,]*)\]")


@dataclasses.dataclass(frozen=True)
class Memory:
    """Bytes per device."""

    arguments: int
    outputs: int
    aliased: int  # outputs that reuse a donated argument's buffer
    temporaries: int
    code: int

    @property
    def total(self) -> int:
        return self.arguments + self.outputs - self.aliased + self.temporaries + self.code

    @classmethod
    def of(cls, compiled: Any) -> "Memory":
        stats = compiled.memory_analysis()
        return cls(arguments=stats.argument_size_in_bytes, outputs=stats.output_size_in_bytes,
                   aliased=stats.alias_size_in_bytes, temporaries=stats.temp_size_in_bytes,
                   code=stats.generated_code_size_in_bytes)


def bytes_per_device(tree: Any) -> int:
    """Bytes of one device's shards of a tree of sharded `ShapeDtypeStruct`s or arrays (the
    logical size: a TPU pads small dimensions to its tiles, which the compiler counts on top)."""
    def shard_bytes(leaf: Any) -> int:
        shape = leaf.sharding.shard_shape(leaf.shape) if getattr(leaf, "sharding", None) else leaf.shape
        itemsize = 8 if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key) else np.dtype(leaf.dtype).itemsize
        return math.prod(shape) * itemsize

    return sum(shard_bytes(leaf) for leaf in jax.tree.leaves(tree))


def flops(compiled: Any) -> float | None:
    """The compiler's FLOP count per device (loop bodies counted once), when it gives one."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):  # older JAX: one dict per partition
        analysis = analysis[0] if analysis else None
    value = (analysis or {}).get("flops")
    return float(value) if value is not None and value >= 0 else None


def _array_bytes(hlo_type: str) -> int:
    """Bytes of the largest array in an HLO type (an async start's tuple holds input and output)."""
    sizes = [math.prod(int(d) for d in m["dims"].split(",") if d) * _itemsize(m["dtype"])
             for m in _ARRAY.finditer(hlo_type)]
    return max(sizes, default=0)


def _itemsize(hlo_dtype: str) -> int:
    if hlo_dtype == "pred":
        return 1
    bits = int(re.sub(r"[^0-9]", "", hlo_dtype) or 8)
    return max(1, bits // 8)


def collectives(hlo_text: str) -> dict[str, tuple[int, int]]:
    """{kind: (count, bytes of their results)} over the collectives in optimized HLO text."""
    found: dict[str, tuple[int, int]] = {}
    for match in _INSTRUCTION.finditer(hlo_text):
        count, size = found.get(match["op"], (0, 0))
        found[match["op"]] = (count + 1, size + _array_bytes(match["type"]))
    return dict(sorted(found.items()))
