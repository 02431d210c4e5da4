"""Token views of a record's text shared by the cleaning stages: word shingles for MinHash dedup
and normalised token n-grams for the benchmark overlap check.

Words are runs of letters, digits and underscores (`\\w+`), so whitespace, indentation and
punctuation changes do not change a record's shingles.
"""

from __future__ import annotations

import re
from typing import Sequence

_WORD = re.compile(r"\w+")
DEFAULT_SHINGLE_WORDS = 5


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def normalised_tokens(text: str) -> list[str]:
    """Lower-cased words: the 13-gram overlap ignores case, layout and punctuation."""
    return _WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def word_shingles(text: str, n: int = DEFAULT_SHINGLE_WORDS) -> list[bytes]:
    """The distinct word n-grams of `text` as UTF-8 bytes (what datasketch hashes), sorted. A text
    shorter than n words is one shingle of all its words, so short records can still match."""
    tokens = words(text)
    if len(tokens) < n:
        return [" ".join(tokens).encode("utf-8")]
    return sorted({" ".join(tokens[i:i + n]).encode("utf-8")
                   for i in range(len(tokens) - n + 1)})
