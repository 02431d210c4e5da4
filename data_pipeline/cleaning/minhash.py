"""MinHash signatures and LSH bands for near-duplicate detection (datasketch), in the one setting
that both the single-process dedup and its Beam form use, so both see the same candidate pairs.

A record's signature is datasketch's MinHash of its word shingles (`shingles.word_shingles`). The
LSH bands (b bands of r rows) are the ones datasketch's `MinHashLSH` picks for the threshold and
number of permutations; records sharing any band are candidates, and a candidate pair is a
near-duplicate when its estimated Jaccard similarity (the share of equal signature rows) is at
least the threshold.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib

import numpy as np
from datasketch import MinHash, MinHashLSH

from data_pipeline.cleaning import shingles

DEFAULT_THRESHOLD = 0.7
DEFAULT_NUM_PERM = 128
SEED = 1


@dataclasses.dataclass(frozen=True)
class MinHashConfig:
    threshold: float = DEFAULT_THRESHOLD
    num_perm: int = DEFAULT_NUM_PERM
    shingle_words: int = shingles.DEFAULT_SHINGLE_WORDS

    def __post_init__(self):
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be between 0 and 1 (exclusive), got "
                             f"{self.threshold}")
        if self.num_perm < 16:
            raise ValueError(f"num_perm must be at least 16, got {self.num_perm}")
        if self.shingle_words < 1:
            raise ValueError(f"shingle_words must be at least 1, got {self.shingle_words}")
        try:
            self.band_ranges
        except ValueError as error:
            raise ValueError(f"threshold {self.threshold} is too close to 1 for {self.num_perm} "
                             f"permutations (datasketch: {error}); raise --num-perm") from None

    def new_lsh(self) -> MinHashLSH:
        return MinHashLSH(threshold=self.threshold, num_perm=self.num_perm)

    @functools.cached_property
    def band_ranges(self) -> list[tuple[int, int]]:
        return list(self.new_lsh().hashranges)

    def as_report(self) -> dict:
        return {"threshold": self.threshold, "num_perm": self.num_perm,
                "shingle_words": self.shingle_words, "bands": len(self.band_ranges),
                "rows_per_band": self.band_ranges[0][1], "seed": SEED}


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def signature(text: str, config: MinHashConfig) -> MinHash:
    minhash = MinHash(num_perm=config.num_perm, seed=SEED)
    minhash.update_batch(shingles.word_shingles(text, config.shingle_words))
    return minhash


def band_keys(hashvalues: np.ndarray, config: MinHashConfig) -> list[tuple[int, bytes]]:
    """(band index, band bytes): records with an equal key share a band."""
    return [(i, hashvalues[start:end].tobytes())
            for i, (start, end) in enumerate(config.band_ranges)]


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.count_nonzero(a == b)) / len(a)
