"""The phi-1 transformer in Flax linen, numerically the same model as Hugging Face `PhiForCausalLM`.

`Phi(config).apply({"params": params}, input_ids, positions=..., segment_ids=..., cache=...)`
returns float32 logits `[batch, seq, vocab]`; with a `cache` (see `init_cache`) it returns
`(logits, new_cache)`, which is how `phi1_jax.sampling` prefills (`last_logits_only=True`: logits
`[batch, 1, vocab]`) and decodes. Training (`phi1_jax.train`) feeds packed seqio batches: segment
ids keep documents apart, positions restart rotary per document. Parameters carry logical axis names that `phi1_jax.sharding` maps to the mesh.

Block (one LayerNorm, attention and MLP in parallel):
    h = dropout(dense(attn(LN(h)))) + dropout(fc2(gelu_tanh(fc1(LN(h))))) + h
"""

from __future__ import annotations

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from phi1_jax import attention as attention_lib
from phi1_jax.attention import CacheQuery
from phi1_jax.model_config import PhiConfig
from phi1_jax.rotary import apply_partial_rotary, rotary_angles

KVCache = dict[str, Any]
CACHE_AXES = ("batch", "heads", "length", "kv")  # logical axes of every key and value buffer

_REMAT_POLICIES = {
    "full": jax.checkpoint_policies.nothing_saveable,
    "dots": jax.checkpoint_policies.dots_saveable,
    "dots_with_no_batch_dims": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


def init_cache(config: PhiConfig, batch_size: int, max_length: int) -> KVCache:
    """An empty KV cache for `max_length` tokens per row: per layer one key and one value buffer
    `[batch, kv_heads, max_length, head_dim]`, the slot axis where the attention dots want it.
    Separate buffers per layer (tuples), not one stacked array, so that a decode step inside
    `lax.while_loop` updates each in place instead of slicing out and re-stacking every layer.
    Laid out over the mesh by the logical rules when a mesh is active (`phi1_jax.sharding`)."""
    def empty() -> jax.Array:
        buffer = jnp.zeros((batch_size, config.kv_heads, max_length, config.head_size), config.compute_dtype)
        return nn.with_logical_constraint(buffer, CACHE_AXES)

    return {
        "k": tuple(empty() for _ in range(config.num_layers)),
        "v": tuple(empty() for _ in range(config.num_layers)),
        "segment_ids": nn.with_logical_constraint(jnp.zeros((batch_size, max_length), jnp.int32),
                                                  ("batch", "length")),
        "end": jnp.zeros((), jnp.int32),
    }


# rules=(): the boxes carry names for phi1_jax.sharding but never constrain on unbox. Under the train
# step's rules, nn.scan traces the initialisers while applying and DenseGeneral unboxes its kernel
# still flattened to 2-D, which a 3-name constraint rejects.
def _normal(config: PhiConfig, names: tuple[str, ...]) -> Any:
    return nn.with_logical_partitioning(nn.initializers.normal(config.initializer_range), names, rules=())


def _constant(init: Any, names: tuple[str, ...]) -> Any:
    return nn.with_logical_partitioning(init, names, rules=())


class _TokenMajorDense(nn.DenseGeneral):
    """DenseGeneral on a 2-D `[tokens, features_in]` view of its input. Given `[batch, seq, ...]`,
    XLA:CPU lays out the weight gradient's dot with a transposing copy of the output gradient,
    which made the backward pass about 2.5x slower than on the flattened view."""

    def __call__(self, inputs: jax.Array) -> jax.Array:
        contracted = len(self.axis) if isinstance(self.axis, tuple) else 1
        leading = inputs.shape[:inputs.ndim - contracted]
        out = super().__call__(inputs.reshape(-1, *inputs.shape[inputs.ndim - contracted:]))
        return out.reshape(*leading, *out.shape[1:])


def _linear(config: PhiConfig, features: int | tuple[int, ...], kernel_names: tuple[str, ...], name: str,
            axis: int | tuple[int, ...] = -1) -> nn.DenseGeneral:
    """A biased linear layer (every Linear of phi-1 has a bias); the bias takes the output names."""
    out_names = kernel_names[-len(features):] if isinstance(features, tuple) else kernel_names[-1:]
    return _TokenMajorDense(
        features=features,
        axis=axis,
        dtype=config.compute_dtype,
        param_dtype=config.weights_dtype,
        kernel_init=_normal(config, kernel_names),
        bias_init=_constant(nn.initializers.zeros_init(), out_names),
        name=name,
    )


def _layer_norm(config: PhiConfig, name: str) -> nn.LayerNorm:
    return nn.LayerNorm(
        epsilon=config.layer_norm_eps,
        dtype=config.compute_dtype,
        param_dtype=config.weights_dtype,
        scale_init=_constant(nn.initializers.ones_init(), ("embed",)),
        bias_init=_constant(nn.initializers.zeros_init(), ("embed",)),
        name=name,
    )


class _ProjectionWeights(nn.Module):
    """The kernel `[embed, heads, head_dim]` and bias of one of q_proj / k_proj / v_proj. Declared
    apart (HF's parameter names) but multiplied together: one fused q|k|v matmul is faster on every
    backend than three narrow ones, in both directions."""

    config: PhiConfig
    heads: int

    @nn.compact
    def __call__(self) -> tuple[jax.Array, jax.Array]:
        cfg = self.config
        kernel = self.param("kernel", _normal(cfg, ("embed", "heads", "kv")),
                            (cfg.hidden_size, self.heads, cfg.head_size), cfg.weights_dtype)
        bias = self.param("bias", _constant(nn.initializers.zeros_init(), ("heads", "kv")),
                          (self.heads, cfg.head_size), cfg.weights_dtype)
        return kernel, bias


class PhiAttention(nn.Module):
    """Multi-head self-attention with partial rotary and an optional KV cache."""

    config: PhiConfig
    deterministic: bool = True

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        cos: jax.Array,
        sin: jax.Array,
        mask: Optional[jax.Array],
        layer_cache: Optional[KVCache],
        cache_query: Optional[CacheQuery],
    ) -> tuple[jax.Array, Optional[KVCache]]:
        cfg = self.config

        heads = {"q_proj": cfg.num_heads, "k_proj": cfg.kv_heads, "v_proj": cfg.kv_heads}
        weights = [_ProjectionWeights(cfg, n, name=name)() for name, n in heads.items()]
        kernel = jnp.concatenate([w.reshape(cfg.hidden_size, -1) for w, _ in weights], axis=1)
        bias = jnp.concatenate([b.reshape(-1) for _, b in weights])
        tokens = x.reshape(-1, cfg.hidden_size)
        qkv = jnp.dot(tokens, kernel.astype(cfg.compute_dtype)) + bias.astype(cfg.compute_dtype)
        splits = np.cumsum([n * cfg.head_size for n in heads.values()])[:-1]
        q, k, v = (nn.with_logical_constraint(part.reshape(*x.shape[:-1], -1, cfg.head_size),
                                              ("batch", "length", "heads", "kv"))
                   for part in jnp.split(qkv, splits, axis=-1))
        q = apply_partial_rotary(q, cos, sin)
        k = apply_partial_rotary(k, cos, sin)

        new_cache = None
        training_dropout = cfg.attention_dropout if not self.deterministic else 0.0
        if layer_cache is not None:
            def write(buffer: jax.Array, new: jax.Array) -> jax.Array:
                new = jnp.swapaxes(new, 1, 2).astype(buffer.dtype)
                return jax.lax.dynamic_update_slice(buffer, new, (0, 0, cache_query.start, 0))
            new_cache = {"k": write(layer_cache["k"], k), "v": write(layer_cache["v"], v)}
            out = attention_lib.cached_attention(q, k, v, new_cache["k"], new_cache["v"], cache_query)
        elif cfg.attention == "xla":
            rng = self.make_rng("dropout") if training_dropout > 0 else None
            out = attention_lib.xla_attention(q, k, v, mask, dropout_rate=training_dropout, dropout_rng=rng)
        else:
            if training_dropout > 0:
                raise ValueError(
                    "attention='dot_product' has no attention dropout; set model.attention_dropout=0 "
                    "or model.attention='xla' to train with it")
            out = attention_lib.fused_attention(q, k, v, mask)

        out = _linear(cfg, cfg.hidden_size, ("heads", "kv", "embed"), "dense", axis=(-2, -1))(out)
        return out, new_cache


class PhiMLP(nn.Module):
    """fc1 -> gelu (tanh approximation, HF's `gelu_new`) -> fc2."""

    config: PhiConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cfg = self.config
        h = _linear(cfg, cfg.intermediate_size, ("embed", "mlp"), "fc1")(x)
        h = nn.with_logical_constraint(jax.nn.gelu(h, approximate=True), ("batch", "length", "mlp"))
        return _linear(cfg, cfg.hidden_size, ("mlp", "embed"), "fc2")(h)


class PhiBlock(nn.Module):
    """One decoder layer; the signature `(carry, *xs) -> (carry, ys)` lets `nn.scan` stack it."""

    config: PhiConfig
    deterministic: bool = True

    @nn.compact
    def __call__(
        self,
        h: jax.Array,
        layer_cache: Optional[KVCache],
        cos: jax.Array,
        sin: jax.Array,
        mask: Optional[jax.Array],
        cache_query: Optional[CacheQuery],
    ) -> tuple[jax.Array, Optional[KVCache]]:
        cfg = self.config
        normed = _layer_norm(cfg, "input_layernorm")(h)
        attn_out, new_cache = PhiAttention(cfg, self.deterministic, name="self_attn")(
            normed, cos, sin, mask, layer_cache, cache_query)
        mlp_out = PhiMLP(cfg, name="mlp")(normed)
        dropout = nn.Dropout(cfg.resid_dropout, deterministic=self.deterministic)
        h = dropout(attn_out) + dropout(mlp_out) + h
        return nn.with_logical_constraint(h, ("batch", "length", "embed")), new_cache


class Phi(nn.Module):
    """phi-1 causal LM: embeddings, `num_layers` parallel blocks, final LayerNorm, biased lm_head."""

    config: PhiConfig

    @nn.compact
    def __call__(
        self,
        input_ids: jax.Array,
        *,
        positions: Optional[jax.Array] = None,
        segment_ids: Optional[jax.Array] = None,
        cache: Optional[KVCache] = None,
        deterministic: bool = True,
        last_logits_only: bool = False,
    ) -> jax.Array | tuple[jax.Array, KVCache]:
        cfg = self.config
        batch, length = input_ids.shape
        start = jnp.zeros((), jnp.int32) if cache is None else cache["end"]
        if positions is None:
            positions = jnp.broadcast_to(start + jnp.arange(length, dtype=jnp.int32), (batch, length))

        if cache is None:
            cache_query = None
            slots = jnp.arange(length)
            mask = None if segment_ids is None else attention_lib.attention_mask(
                segment_ids, segment_ids, slots, slots)
        else:
            if segment_ids is None:
                segment_ids = jnp.ones((batch, length), jnp.int32)
            kv_segment_ids = jax.lax.dynamic_update_slice(cache["segment_ids"], segment_ids, (0, start))
            cache_query = CacheQuery(segment_ids, kv_segment_ids, start)
            mask = None  # cached_attention builds the mask over the cache

        cos, sin = rotary_angles(positions, cfg.rotary_dim, cfg.rope_theta)

        h = nn.Embed(
            cfg.vocab_size,
            cfg.hidden_size,
            dtype=cfg.compute_dtype,
            param_dtype=cfg.weights_dtype,
            embedding_init=_normal(cfg, ("vocab", "embed")),
            name="embed_tokens",
        )(input_ids)
        h = nn.Dropout(cfg.embd_dropout, deterministic=deterministic)(h)
        h = nn.with_logical_constraint(h, ("batch", "length", "embed"))

        block = PhiBlock
        if cfg.remat_policy != "none":
            block = nn.remat(block, policy=_REMAT_POLICIES[cfg.remat_policy], prevent_cse=not cfg.scan_layers)

        if cfg.scan_layers:
            # The scan takes the per-layer buffers stacked and returns them stacked: a copy of the
            # whole cache per call. Correct, but the sampler runs the per-layer layout instead.
            layer_caches = None if cache is None else {"k": jnp.stack(cache["k"]), "v": jnp.stack(cache["v"])}
            stack = nn.scan(
                block,
                variable_axes={"params": 0},
                split_rngs={"params": True, "dropout": True},
                in_axes=(0, nn.broadcast, nn.broadcast, nn.broadcast, nn.broadcast),
                length=cfg.num_layers,
                metadata_params={nn.PARTITION_NAME: "layers"},
            )
            h, stacked = stack(cfg, deterministic, name="layers")(h, layer_caches, cos, sin, mask, cache_query)
            new_layer_caches = None if cache is None else {
                name: tuple(buffer[i] for i in range(cfg.num_layers)) for name, buffer in stacked.items()}
        else:
            per_layer = []
            for i in range(cfg.num_layers):
                layer_cache = None if cache is None else {"k": cache["k"][i], "v": cache["v"][i]}
                h, new_layer_cache = block(cfg, deterministic, name=f"layers_{i}")(
                    h, layer_cache, cos, sin, mask, cache_query)
                per_layer.append(new_layer_cache)
            new_layer_caches = None if cache is None else {
                name: tuple(layer[name] for layer in per_layer) for name in ("k", "v")}

        h = _layer_norm(cfg, "final_layernorm")(h)
        if last_logits_only:  # a sampler's prefill: [batch, prompt, vocab] logits would be mostly unused
            h = h[:, -1:]
        logits = _linear(cfg, cfg.vocab_size, ("embed", "vocab"), "lm_head")(h).astype(jnp.float32)
        logits = nn.with_logical_constraint(logits, ("batch", "length", "vocab"))
        if cache is None:
            return logits
        new_cache = dict(new_layer_caches, segment_ids=kv_segment_ids, end=start + length)
        return logits, new_cache


def init_params(config: PhiConfig, rng: jax.Array, *, boxed: bool = False) -> Any:
    """Randomly initialised parameters (`boxed=True` keeps the logical-axis `nn.Partitioned` boxes)."""
    variables = Phi(config).init(rng, jnp.zeros((1, 1), jnp.int32))
    params = variables["params"]
    return params if boxed else nn.unbox(params)
