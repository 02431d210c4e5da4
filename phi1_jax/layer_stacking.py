"""Moves parameters between the two layer layouts of `phi1_jax.model`: one subtree per layer
(`layers_0`, `layers_1`, ...) and one `layers` subtree stacked on a leading axis (`scan_layers`).

Conversion works on the per-layer layout; training and evaluation call `match_layout` so a
checkpoint written in one layout loads into a model configured with the other.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def is_stacked(params: dict[str, Any]) -> bool:
    return "layers" in params


def stack_layers(params: dict[str, Any], num_layers: int) -> dict[str, Any]:
    if is_stacked(params):
        return params
    names = [f"layers_{i}" for i in range(num_layers)]
    rest = {k: v for k, v in params.items() if k not in names}
    return dict(rest, layers=jax.tree.map(lambda *xs: jnp.stack(xs), *[params[n] for n in names]))


def unstack_layers(params: dict[str, Any]) -> dict[str, Any]:
    if not is_stacked(params):
        return params
    stacked = params["layers"]
    num_layers = jax.tree.leaves(stacked)[0].shape[0]
    rest = {k: v for k, v in params.items() if k != "layers"}
    rest.update({f"layers_{i}": jax.tree.map(lambda x, i=i: x[i], stacked) for i in range(num_layers)})
    return rest


def match_layout(params: dict[str, Any], scan_layers: bool, num_layers: int) -> dict[str, Any]:
    """`params` in the layout a model with this `scan_layers` setting expects."""
    return stack_layers(params, num_layers) if scan_layers else unstack_layers(params)
