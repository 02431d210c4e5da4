"""The model's shape and numerics: one frozen, hashable record shared by the model, sharding,
conversion and sampling.

`config.model` (an ml_collections ConfigDict, see DESIGN.md "Config") is turned into a
`PhiConfig` with `PhiConfig.from_dict`; the Hugging Face `config.json` of a Phi model is turned
into one by `phi1_jax.convert`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import jax.numpy as jnp

ATTENTION_IMPLEMENTATIONS = ("xla", "dot_product")
REMAT_POLICIES = ("none", "full", "dots", "dots_with_no_batch_dims")


@dataclasses.dataclass(frozen=True)
class PhiConfig:
    """Hyperparameters of a Phi causal LM (defaults: phi-1, 1.3B)."""

    vocab_size: int = 51200
    hidden_size: int = 2048
    intermediate_size: int = 8192
    num_layers: int = 24
    num_heads: int = 32
    num_kv_heads: int = 0  # 0: same as num_heads (phi-1 has no grouped-query attention)
    head_dim: int = 0  # 0: hidden_size // num_heads
    partial_rotary_factor: float = 0.5
    rope_theta: float = 10000.0
    layer_norm_eps: float = 1e-5
    max_position_embeddings: int = 2048
    embd_dropout: float = 0.0
    resid_dropout: float = 0.0
    attention_dropout: float = 0.0
    initializer_range: float = 0.02
    dtype: str = "float32"  # compute dtype of matmuls and activations
    param_dtype: str = "float32"
    remat_policy: str = "none"
    scan_layers: bool = False
    attention: str = "xla"

    def __post_init__(self) -> None:
        problems = []
        for name in ("vocab_size", "hidden_size", "intermediate_size", "num_layers", "num_heads"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive, got {getattr(self, name)}")
        if self.num_heads > 0 and self.head_dim == 0 and self.hidden_size % self.num_heads:
            problems.append(
                f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if self.num_heads > 0 and self.kv_heads and self.num_heads % self.kv_heads:
            problems.append(
                f"num_heads {self.num_heads} is not a multiple of num_kv_heads {self.kv_heads}")
        if self.attention not in ATTENTION_IMPLEMENTATIONS:
            problems.append(f"attention must be one of {ATTENTION_IMPLEMENTATIONS}, got {self.attention!r}")
        if self.remat_policy not in REMAT_POLICIES:
            problems.append(f"remat_policy must be one of {REMAT_POLICIES}, got {self.remat_policy!r}")
        for name in ("dtype", "param_dtype"):
            if getattr(self, name) not in ("float32", "bfloat16", "float16"):
                problems.append(f"{name} must be float32, bfloat16 or float16, got {getattr(self, name)!r}")
        if problems:
            raise ValueError("invalid model config: " + "; ".join(problems))

    @property
    def kv_heads(self) -> int:
        return self.num_kv_heads or self.num_heads

    @property
    def head_size(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads

    @property
    def rotary_dim(self) -> int:
        return int(self.head_size * self.partial_rotary_factor)

    @property
    def compute_dtype(self) -> jnp.dtype:
        return jnp.dtype(self.dtype)

    @property
    def weights_dtype(self) -> jnp.dtype:
        return jnp.dtype(self.param_dtype)

    def num_params(self) -> int:
        """Exact parameter count (every Linear has a bias, embeddings are untied)."""
        e, m, v = self.hidden_size, self.intermediate_size, self.vocab_size
        q = self.num_heads * self.head_size
        kv = self.kv_heads * self.head_size
        attention = (e * q + q) + 2 * (e * kv + kv) + (q * e + e)
        mlp = (e * m + m) + (m * e + e)
        layer = attention + mlp + 2 * e
        return v * e + self.num_layers * layer + 2 * e + (e * v + v)

    def shape_differences(self, other: "PhiConfig") -> dict[str, tuple[Any, Any]]:
        """{field: (self's, other's)} for every field that changes a parameter's shape."""
        shape = ("vocab_size", "hidden_size", "intermediate_size", "num_layers", "num_heads", "kv_heads", "head_size")
        return {k: (getattr(self, k), getattr(other, k)) for k in shape if getattr(self, k) != getattr(other, k)}

    def replace(self, **changes: Any) -> "PhiConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "PhiConfig":
        """Builds a config from a mapping (a ConfigDict works), naming any unknown key."""
        values = dict(values.items())
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown model config keys {unknown}; known keys are {sorted(known)}")
        return cls(**values)
