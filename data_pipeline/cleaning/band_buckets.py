"""Near-duplicate edges from one LSH band bucket in time linear in the bucket's size: the dedup
stage's candidate check, shared by the single process (`data_pipeline.dedup`) and the Beam form
(`cleaning.dedup_beam`), so both find the same edges.

A bucket holds the distinct contents (content hash, MinHash values) that share one band. Instead
of comparing every pair (quadratic: generated files, licence headers and vendored copies make
buckets of thousands), the members are sorted by content hash and the first one leads: every other
member whose estimated Jaccard similarity to the leader reaches the threshold is linked to it. The
members that do not reach it are the next round's bucket, led by its own first member, for at
most `MAX_LEADERS` rounds; what is left after that gets no edge from this bucket (another band may
still link it). A bucket of n members costs at most `MAX_LEADERS * n` comparisons.

Every edge is a verified near-duplicate pair (estimated Jaccard >= threshold), so a cluster is
never larger than comparing all pairs would make it. It can be smaller: two members similar to
each other but to no leader the other is linked to stay apart. `benchmarks/dedup_scale.py`
measures how often that changes what is kept on real files.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

# Four leaders cover a bucket that holds a few unrelated groups (a shared licence header beside
# real near-copies) while keeping a pathological bucket linear.
MAX_LEADERS = 4


def star_edges(members: Iterable[tuple[str, np.ndarray]], threshold: float,
               max_leaders: int = MAX_LEADERS) -> Iterator[tuple[str, str]]:
    """(leader hash, member hash) for every member linked to a leader; the leader sorts first."""
    pending = sorted(members, key=lambda member: member[0])
    for _ in range(max_leaders):
        if len(pending) < 2:
            return
        (leader, values), rest = pending[0], pending[1:]
        # One vectorised comparison of the leader against the whole rest of the bucket.
        shares = (np.stack([v for _, v in rest]) == values).mean(axis=1)
        pending = []
        for (digest, other), share in zip(rest, shares):
            if share >= threshold:
                yield leader, digest
            else:
                pending.append((digest, other))
