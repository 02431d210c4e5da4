"""The embedding method of decontamination: each benchmark problem's prompt + solution is embedded
once by the project's one embedder (`data_pipeline.embedder`, DESIGN.md's shared Embedder); a
record's units (its functions, or the whole text) are embedded and compared by cosine similarity,
which is the dot product of the embedder's L2-normalised rows."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np


class EmbeddingIndex:
    def __init__(self, texts: Sequence[str], embedder_spec: str = "default"):
        from data_pipeline import embedder as embedder_lib

        self.embedder = embedder_lib.load_embedder(embedder_spec)
        self.vectors = np.asarray(self.embedder.embed(list(texts)), np.float32)

    def matches(self, units: Sequence[str], threshold: float) -> Iterator[tuple[int, float]]:
        """(owner, best cosine over the units) for owners at or above the threshold, by owner."""
        if not units:
            return
        similarity = np.asarray(self.embedder.embed(list(units)), np.float32) @ self.vectors.T
        best = similarity.max(axis=0)
        for owner in np.flatnonzero(best >= threshold):
            yield int(owner), float(best[owner])
