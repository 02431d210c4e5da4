"""Scoring texts for educational value (DESIGN.md: "score all files (classifier)"): the embedder
and the classifier loaded together, checked against each other, and applied batch by batch. Both
paths of `data_pipeline.filter` (Beam workers and the single process) score through this class,
so they give the same scores.
"""

from __future__ import annotations

import time
from typing import Optional, Sequence

import numpy as np

from data_pipeline.curation.classifier import Classifier, load_classifier
from data_pipeline.embedder import Embedder, load_embedder


class Scorer:
    """Scores texts with the classifier in `classifier_dir` (None: the shipped one) over the
    embedder it was trained on, or `embedder_spec` when given (refused unless it is the same
    model). `threshold` replaces the classifier's own. Keeps the seconds spent embedding and
    classifying, for the speed report."""

    def __init__(self, classifier_dir: Optional[str] = None, embedder_spec: Optional[str] = None,
                 threshold: Optional[float] = None):
        self.classifier: Classifier = load_classifier(classifier_dir)
        self._threshold = self.classifier.threshold if threshold is None else threshold
        self.embedder: Embedder = load_embedder(embedder_spec or self.classifier.metadata["embedder"]["spec"])
        self.classifier.check_embedder(self.embedder)
        self.embed_seconds = 0.0
        self.classify_seconds = 0.0

    @property
    def threshold(self) -> float:
        return self._threshold

    def score(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        start = time.perf_counter()
        vectors = self.embedder.embed(texts, batch_size=batch_size)
        middle = time.perf_counter()
        scores = self.classifier.score(vectors)
        self.embed_seconds += middle - start
        self.classify_seconds += time.perf_counter() - middle
        return scores
