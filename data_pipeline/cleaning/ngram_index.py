"""The benchmark n-gram index, built once per run: every distinct n-gram (default 13) of normalised
tokens (`shingles.normalised_tokens`) of each benchmark problem's prompt + solution, mapped to the
problems that contain it. A record is scored by one pass over its own n-grams: per problem, the
share of that problem's n-grams that occur in the record."""

from __future__ import annotations

from typing import Sequence

from data_pipeline.cleaning import shingles

DEFAULT_N = 13


class NGramIndex:
    def __init__(self, texts: Sequence[str], n: int = DEFAULT_N):
        self.n = n
        self.postings: dict[tuple[str, ...], list[int]] = {}
        self.sizes = []
        for owner, text in enumerate(texts):
            grams = shingles.ngrams(shingles.normalised_tokens(text), n)
            self.sizes.append(len(grams))
            for gram in grams:
                self.postings.setdefault(gram, []).append(owner)
        self.grams = frozenset(self.postings)

    def overlaps(self, text: str) -> dict[int, float]:
        """Owner -> share of its n-grams found in `text`, for owners with any."""
        found: dict[int, int] = {}
        # One set intersection in C; most records share no n-gram with any problem.
        for gram in shingles.ngrams(shingles.normalised_tokens(text), self.n) & self.grams:
            for owner in self.postings[gram]:
                found[owner] = found.get(owner, 0) + 1
        return {owner: count / self.sizes[owner] for owner, count in found.items()}
