"""Score histograms for the curation stages (DESIGN.md: "train RandomForest" and "score all
files"): fixed bins over [0, 1] so histograms from different runs and Beam workers add up, and the
PNG that `classify train` and `filter` write beside their reports."""

from __future__ import annotations

import io
from typing import Mapping, Sequence

import numpy as np
import tensorflow as tf

BINS = 20


def bin_index(score: float) -> int:
    """The bin of `score` in [0, 1]; 1.0 falls in the last bin."""
    return min(int(score * BINS), BINS - 1)


def histogram_counts(scores: Sequence[float]) -> list[int]:
    counts = [0] * BINS
    for score in scores:
        counts[bin_index(float(score))] += 1
    return counts


def write_png(path: str, counts_by_series: Mapping[str, Sequence[int]], threshold: float, title: str) -> None:
    """Overlaid bar histograms of per-bin counts (e.g. held-out positives vs negatives), with the
    decision threshold marked."""
    import matplotlib

    matplotlib.use("Agg")  # no display on workers and CI
    import matplotlib.pyplot as plt

    edges = np.linspace(0.0, 1.0, BINS + 1)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, counts in counts_by_series.items():
        ax.bar(edges[:-1], counts, width=1.0 / BINS, align="edge", alpha=0.55, label=label)
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:g}")
    ax.set_xlabel("classifier score (probability of educational value)")
    ax.set_ylabel("files")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    with tf.io.gfile.GFile(path, "wb") as f:  # local or gs://
        f.write(buffer.getvalue())
