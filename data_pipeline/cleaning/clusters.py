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


class UnionFind:
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
    representatives, `similarity(key_a, key_b)` the estimated Jaccard of two representatives.
    This is the single-process cluster step; the Beam form finds the components with
    `cleaning.components` and calls `component_cluster` per component."""
    union = UnionFind()
    groups = [list(group) for group in exact_groups]
    for group in groups:
        for m in group:
            union.union(group[0].key, m.key)
    for a, b in near_pairs:
        union.union(a.key, b.key)
    components: dict[str, list[list[Member]]] = {}
    for group in groups:
        components.setdefault(union.find(group[0].key), []).append(group)
    found = (component_cluster(component, similarity) for component in components.values())
    return ordered([c for c in found if c is not None])


def component_cluster(exact_groups: Sequence[Sequence[Member]],
                      similarity: Callable[[str, str], float]) -> Cluster | None:
    """The cluster of one connected component given as its exact groups, by the keep rule; None
    for a lone record. `similarity` is called on group representatives only."""
    members = sorted((m for group in exact_groups for m in group), key=keep_order)
    if len(members) < 2:
        return None
    kept = members[0]
    representative = {}
    for group in exact_groups:
        first = min(group, key=keep_order)
        representative.update((m.key, first) for m in group)
    dropped = []
    for m in members[1:]:
        rep = representative[m.key]
        if rep.key == kept.key:
            dropped.append((m, 1.0, "exact"))
        else:
            dropped.append((m, similarity(rep.key, kept.key), "near"))
    return Cluster(kept, tuple(dropped))


def ordered(clusters: Iterable[Cluster]) -> list[Cluster]:
    """The report's order: by kept id (then key), whatever order the clusters were found in."""
    return sorted(clusters, key=lambda c: keep_order(c.kept)[1:])


def dropped_keys(clusters: Sequence[Cluster]) -> set[str]:
    return {m.key for c in clusters for m, _, _ in c.dropped}


def cluster_rows(clusters: Sequence[Cluster]) -> list[dict]:
    """The clusters report: one row per cluster."""
    return [{"cluster_id": i, "kept": c.kept.id,
             "dropped": [{"id": m.id, "similarity": round(sim, 4), "match": kind}
                         for m, sim, kind in c.dropped]}
            for i, c in enumerate(clusters)]
