"""The phi1_jax checkpoint as a text embedder of the data pipeline (`data_pipeline.embedder`, spec
`checkpoint:PATH`): a text's vector is the mean of its last hidden states (after
`final_layernorm`), tokenized with the vocabulary the checkpoint carries
(`phi1_jax.checkpoint_vocabulary`).

It subclasses `data_pipeline.embedder.Embedder` (windows, pooling, normalisation), a downward
import: the data pipeline never imports phi1_jax, and finds this class through the
`phi1_jax.embedders` entry point declared in setup.py (`checkpoint = ...:CheckpointEmbedder`).
Before issue 25 it lived in `data_pipeline/embedder.py`.
"""

from __future__ import annotations

import hashlib
import os
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from data_pipeline.embedder import MAX_TOKENS_PER_TEXT, Embedder
from phi1_jax import checkpoint_vocabulary
from phi1_jax.checkpoint import load_model
from phi1_jax.model import Phi


class CheckpointEmbedder(Embedder):
    """A phi1_jax checkpoint: a window's vector is the sum of its last hidden states divided by
    its length, so the weighted pooling in `embed` gives the mean over the whole text."""

    def __init__(self, path: str, tokenizer_dir: str | None = None):
        self._config, self._params = load_model(path)
        # The vocabulary it carries (or `tokenizer_dir`), refused unless it fits the model.
        self._vocabulary = checkpoint_vocabulary.for_checkpoint(path, self._config.vocab_size, tokenizer_dir)
        self.window = min(self._config.max_position_embeddings, MAX_TOKENS_PER_TEXT)
        self.dim = self._config.hidden_size
        self.name = f"checkpoint:{os.path.basename(os.path.abspath(path))}@{self._params_digest()}"
        model = Phi(self._config)

        def mean_hidden(params, ids, lengths):
            # Only final_layernorm's output is returned, so XLA drops the unused lm_head matmul.
            _, state = model.apply({"params": params}, ids, mutable=["intermediates"],
                                   capture_intermediates=lambda mdl, _: mdl.name == "final_layernorm")
            hidden = state["intermediates"]["final_layernorm"]["__call__"][0].astype(jnp.float32)
            mask = (jnp.arange(ids.shape[1])[None, :] < lengths[:, None]).astype(jnp.float32)
            return (hidden * mask[..., None]).sum(1) / jnp.maximum(lengths, 1)[:, None]

        # Causal attention: right padding cannot change the real tokens' states, so no mask is
        # passed to the model, only to the mean.
        self._mean_hidden = jax.jit(mean_hidden)

    def _params_digest(self) -> str:
        digest = hashlib.sha256(repr(sorted(self._config.to_dict().items())).encode())
        for key, leaf in sorted(jax.tree_util.tree_leaves_with_path(self._params), key=lambda kv: str(kv[0])):
            # The small tensors (norms, biases) change with any training step; hashing the whole
            # 1.3B-parameter tree would cost seconds for nothing.
            if leaf.size <= 1 << 16:
                digest.update(str(key).encode())
                digest.update(np.asarray(leaf).tobytes())
        return digest.hexdigest()[:12]

    def _windows(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        windows, owners = [], []
        for owner, ids in enumerate(self._vocabulary.encode_batch(list(texts))):
            ids = list(ids) or [self._vocabulary.eos_id]
            for start in range(0, len(ids), self.window):
                windows.append(ids[start:start + self.window])
                owners.append(owner)
        return windows, owners

    def _embed_windows(self, windows: Sequence[Sequence[int]]) -> np.ndarray:
        # Shapes are rounded up (length to a power of two, batch to a multiple of 8) so a run
        # compiles a handful of programs, not one per batch.
        length = min(self.window, 1 << max(4, (max(len(w) for w in windows) - 1).bit_length()))
        rows = -(-len(windows) // 8) * 8
        ids = np.zeros((rows, length), np.int32)
        lengths = np.zeros((rows,), np.int32)
        for row, window in enumerate(windows):
            ids[row, :len(window)] = window
            lengths[row] = len(window)
        return np.asarray(self._mean_hidden(self._params, ids, lengths))[:len(windows)]
