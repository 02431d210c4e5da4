"""Duplicate clusters and the keep rule, as pure functions of what was found (the same in the
single-process dedup and its Beam form).

Keep rule: in every cluster the record with the longest text is kept; ties go to the smallest id,
then the smallest record key (shard, line). It depends only on the records, never on input order.

A cluster is a connected component of the "duplicate of" relation: exact duplicates (equal content
hash) and near-duplicate pairs (estimated Jaccard >= threshold). Exact duplicates have equal
lengths, so each exact group's representative (the one the keep rule prefers) is the only member
that takes part in near-duplicate search.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterable, Sequence


@dataclasses.dataclass(frozen=True)
class Member:
    key: str
    id: str
    length: int


def keep_order(member: Member) -> tuple:
    """Sorts the member to keep first."""
    return (-member.length, member.id, member.key)


@dataclasses.dataclass(frozen=True)
class Cluster:
    kept: Member
    # (member, estimated Jaccard similarity to the kept record, "exact" or "near")
    dropped: tuple[tuple[Member, float, str], ...]


class _UnionFind:
    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        root = x
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while x != root:
            self.parent[x], x = root, self.parent.get(x, x)
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def build_clusters(exact_groups: Iterable[Sequence[Member]],
                   near_pairs: Iterable[tuple[Member, Member]],
                   similarity: Callable[[str, str], float]) -> list[Cluster]:
    """Clusters with more than one member, ordered by kept id. `exact_groups` are the groups of
    equal content (singletons allowed), `near_pairs` the near-duplicate pairs among the groups'
    representatives, `similarity(key_a, key_b)` the estimated Jaccard of two representatives."""
    union = _UnionFind()
    members: dict[str, Member] = {}
    representative: dict[str, Member] = {}
    for group in exact_groups:
        group = sorted(group, key=keep_order)
        for m in group:
            members[m.key] = m
            representative[m.key] = group[0]
            union.union(group[0].key, m.key)
    for a, b in near_pairs:
        union.union(a.key, b.key)
    components: dict[str, list[Member]] = {}
    for key, m in members.items():
        components.setdefault(union.find(key), []).append(m)
    out = []
    for component in components.values():
        if len(component) < 2:
            continue
        component.sort(key=keep_order)
        kept = component[0]
        dropped = []
        for m in component[1:]:
            rep = representative[m.key]
            if rep.key == kept.key:
                dropped.append((m, 1.0, "exact"))
            else:
                dropped.append((m, similarity(rep.key, kept.key), "near"))
        out.append(Cluster(kept, tuple(dropped)))
    out.sort(key=lambda c: keep_order(c.kept)[1:])
    return out


def dropped_keys(clusters: Sequence[Cluster]) -> set[str]:
    return {m.key for c in clusters for m, _, _ in c.dropped}


def cluster_rows(clusters: Sequence[Cluster]) -> list[dict]:
    """The clusters report: one row per cluster."""
    return [{"cluster_id": i, "kept": c.kept.id,
             "dropped": [{"id": m.id, "similarity": round(sim, 4), "match": kind}
                         for m, sim, kind in c.dropped]}
            for i, c in enumerate(clusters)]
