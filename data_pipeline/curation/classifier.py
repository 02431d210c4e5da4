"""The educational-value classifier of DESIGN.md's data flow ("train RandomForest" -> "score all
files"): a scikit-learn random forest over `data_pipeline.embedder` vectors, and its directory on
disk.

A classifier directory holds

- `model.skops`: the forest, in skops' format (no pickle: loading runs no code from the file);
- `metadata.json`: the embedder's name, dimension and spec, the decision threshold, the label
  scale (scores 1-5, positive when >= `positive_min_score`), label counts, held-out metrics and
  the library versions it was trained with;
- `histogram.png`: held-out scores of each class.

`load_classifier(dir, embedder)` refuses an embedder whose name or dimension differs from the one
the forest was trained on: its vectors would score as noise, silently.

skops still has to trust one type for a forest, `sklearn.tree._tree.Tree`, whose node arrays
scikit-learn indexes without bounds checks. Loading therefore checks every tree's child and
feature indices before the forest is used, so a crafted file fails with an error instead of
reading out of bounds.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import zipfile
from typing import Any, Mapping, Sequence

import numpy as np

from data_pipeline.embedder import Embedder

MODEL_FILE = "model.skops"
METADATA_FILE = "metadata.json"
HISTOGRAM_FILE = "histogram.png"
SCORE_SCALE = (1, 5)
DEFAULT_POSITIVE_MIN_SCORE = 3
DEFAULT_THRESHOLD = 0.5
_FOREST_TREE_TYPE = "sklearn.tree._tree.Tree"
_VERSIONED_LIBRARIES = ("scikit-learn", "skops", "numpy", "sentence-transformers", "torch", "jax")
DEFAULT_CLASSIFIER_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "default_classifier")


class EmbedderMismatchError(ValueError):
    """The classifier was trained on another embedder's vectors."""


@dataclasses.dataclass
class Classifier:
    """A fitted forest plus what it needs to be used correctly (see the module docstring)."""

    forest: Any
    metadata: dict

    @property
    def threshold(self) -> float:
        return float(self.metadata["threshold"])

    def score(self, vectors: np.ndarray) -> np.ndarray:
        """Probability of the positive (educational) class for each row, float64 in [0, 1]."""
        expected = self.metadata["embedder"]["dim"]
        if vectors.ndim != 2 or vectors.shape[1] != expected:
            raise ValueError(f"expected vectors of shape [n, {expected}], got {vectors.shape}")
        return positive_probability(self.forest, vectors)

    def check_embedder(self, embedder: Embedder) -> None:
        trained = self.metadata["embedder"]
        if (embedder.name, embedder.dim) != (trained["name"], trained["dim"]):
            raise EmbedderMismatchError(
                f"this classifier was trained on vectors of embedder {trained['name']!r} "
                f"(dim {trained['dim']}, spec {trained['spec']!r}); refusing {embedder.name!r} "
                f"(dim {embedder.dim}): pass --embedder {trained['spec']!r} or retrain the "
                "classifier on the new embedder")


def check_score(score: Any) -> int:
    """`score` when it is an integer on the label scale (1-5); ValueError otherwise."""
    low, high = SCORE_SCALE
    if isinstance(score, bool) or not isinstance(score, int) or not low <= score <= high:
        raise ValueError(f"score {score!r} is not an integer from {low} to {high}")
    return score


def positive_labels(scores: Sequence[int], positive_min_score: int) -> np.ndarray:
    return (np.asarray(scores) >= positive_min_score).astype(np.int64)


def fit_forest(vectors: np.ndarray, labels: np.ndarray, *, seed: int, n_estimators: int = 300) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    # Balanced class weights: annotated samples are rarely half educational, and the threshold
    # should not have to absorb the class ratio.
    forest = RandomForestClassifier(n_estimators=n_estimators, class_weight="balanced_subsample",
                                    min_samples_leaf=1, random_state=seed, n_jobs=1)
    return forest.fit(vectors, labels)


def positive_probability(forest: Any, vectors: np.ndarray) -> np.ndarray:
    if not len(vectors):
        return np.zeros((0,), np.float64)
    return forest.predict_proba(vectors)[:, list(forest.classes_).index(1)]


def heldout_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """Precision, recall and F1 of the positive class at `threshold`, and ROC AUC."""
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score

    predicted = (scores >= threshold).astype(np.int64)
    precision, recall, f1, _ = precision_recall_fscore_support(labels, predicted, average="binary",
                                                               zero_division=0)
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1),
            "roc_auc": float(roc_auc_score(labels, scores)), "examples": int(len(labels)),
            "positives": int(labels.sum())}


def library_versions() -> dict[str, str]:
    versions = {}
    for name in _VERSIONED_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def embedder_metadata(embedder: Embedder, spec: str) -> dict:
    return {"name": embedder.name, "dim": embedder.dim, "spec": spec}


def save_classifier(classifier: Classifier, out_dir: str) -> None:
    import skops.io

    os.makedirs(out_dir, exist_ok=True)
    # The trees' node arrays deflate about 4x; the shipped classifier stays a small file.
    skops.io.dump(classifier.forest, os.path.join(out_dir, MODEL_FILE), compression=zipfile.ZIP_DEFLATED,
                  compresslevel=9)
    with open(os.path.join(out_dir, METADATA_FILE), "w") as f:
        json.dump(classifier.metadata, f, indent=2, sort_keys=True)
        f.write("\n")


def _check_tree_bounds(forest: Any, n_features: int) -> None:
    for index, estimator in enumerate(getattr(forest, "estimators_", [])):
        tree = estimator.tree_
        nodes = tree.node_count
        for name, low, high in (("children_left", -1, nodes), ("children_right", -1, nodes),
                                ("feature", -2, n_features)):
            values = np.asarray(getattr(tree, name))
            if len(values) != nodes or values.min(initial=low) < low or values.max(initial=low) >= high:
                raise ValueError(f"tree {index}: {name} out of range; the model file is corrupt or crafted")


def load_classifier(directory: str | None = None, embedder: Embedder | None = None) -> Classifier:
    """The classifier in `directory` (default: the one shipped in the package); with `embedder`,
    refuses one it was not trained on (`EmbedderMismatchError`)."""
    import skops.io
    from sklearn.ensemble import RandomForestClassifier

    directory = directory or DEFAULT_CLASSIFIER_DIR
    model_path, metadata_path = (os.path.join(directory, n) for n in (MODEL_FILE, METADATA_FILE))
    for path in (model_path, metadata_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} does not exist: not a classifier directory "
                                    "(make one with `python -m data_pipeline.classify train`)")
    with open(metadata_path) as f:
        metadata = json.load(f)
    untrusted = set(skops.io.get_untrusted_types(file=model_path)) - {_FOREST_TREE_TYPE}
    if untrusted:
        raise ValueError(f"{model_path} holds types that are not a random forest: {sorted(untrusted)}")
    forest = skops.io.load(model_path, trusted=[_FOREST_TREE_TYPE])
    if not isinstance(forest, RandomForestClassifier):
        raise ValueError(f"{model_path} holds a {type(forest).__name__}, not a RandomForestClassifier")
    _check_tree_bounds(forest, metadata["embedder"]["dim"])
    classifier = Classifier(forest, metadata)
    if embedder is not None:
        classifier.check_embedder(embedder)
    return classifier


def label_counts(scores: Sequence[int], positive: np.ndarray) -> dict:
    per_score = {str(s): int(np.sum(np.asarray(scores) == s)) for s in range(SCORE_SCALE[0], SCORE_SCALE[1] + 1)}
    return {"per_score": per_score, "positive": int(positive.sum()), "negative": int(len(positive) - positive.sum())}


def build_metadata(*, embedder: Mapping, threshold: float, positive_min_score: int, counts: Mapping,
                   metrics: Mapping, split: Mapping, labels_file: str) -> dict:
    return {"embedder": dict(embedder), "threshold": threshold, "positive_min_score": positive_min_score,
            "score_scale": list(SCORE_SCALE), "label_counts": dict(counts), "heldout_metrics": dict(metrics),
            "split": dict(split), "labels_file": labels_file, "libraries": library_versions()}
