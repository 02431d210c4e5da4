"""Connected components of a graph given as a PCollection of edges, computed by Beam with no step
that holds all edges or all nodes in one worker: the cluster step of the dedup stage's Beam form
(`cleaning.dedup_beam`). The single process finds the same components with the union-find of
`cleaning.clusters`.

Nodes are strings; the label of a component is its smallest node. Rounds of large-star then
small-star (Kiveris et al., "Connected Components in MapReduce and Beyond", SoCC 2014) keep every
component connected while pointing its nodes at ever smaller nodes, until each component is a
star around its smallest node. Each step groups the edges by node, so a worker holds one node's
neighbours at a time (a node's degree, never the graph). Beam pipelines have no loops, so
`rounds` rounds are unrolled; whatever is still not a star after them (no edge at all on the
tests' and the benchmark's inputs with the default) is gathered and settled by a union-find in
one step, so the labels are right for any number of rounds, and only that unsettled rest ever
meets in one worker.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import apache_beam as beam

from data_pipeline.cleaning import clusters as clusters_lib

DEFAULT_ROUNDS = 3


def _large_star(node: str, neighbours: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Links every larger neighbour to the smallest node of the neighbourhood."""
    smallest = min(min(neighbours), node)
    for other in neighbours:
        if other > node:
            yield other, smallest


def _small_star(node: str, smaller: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Links the node and its smaller neighbours to the smallest of them."""
    smallest = min(min(smaller), node)
    for other in smaller:
        if other != smallest:
            yield other, smallest
    if node != smallest:
        yield node, smallest


def _unsettled(node: str, grouped: dict) -> Iterator[tuple[str, str]]:
    """Every edge of a node that is not yet a leaf or the centre of a star."""
    parents, children = set(grouped["up"]), list(grouped["down"])
    if len(parents) > 1 or (parents and children):
        yield from ((node, parent) for parent in parents)
        yield from ((child, node) for child in children)


def _settle(edges: Iterable[tuple[str, str]]) -> Iterator[tuple[str, str]]:
    union = clusters_lib.UnionFind()
    nodes = set()
    for child, parent in edges:
        union.union(child, parent)
        nodes.update((child, parent))
    return ((node, union.find(node)) for node in nodes)


def _labels(node: str, grouped: dict) -> Iterator[tuple[str, str]]:
    """(node, label) for a star's centre and its leaves; a leaf outside the settled rest gets its
    label from its centre's group."""
    settled = list(grouped["settled"])
    if list(grouped["up"]) and not settled:
        return
    label = settled[0] if settled else node
    yield node, label
    for child in grouped["down"]:
        yield child, label


class ConnectedComponents(beam.PTransform):
    """(a, b) edges -> (node, smallest node of its component) for every node of an edge."""

    def __init__(self, rounds: int = DEFAULT_ROUNDS):
        super().__init__()
        self._rounds = rounds

    def expand(self, edges):
        edges = edges | "oriented" >> beam.Map(lambda e: (max(e), min(e)))
        for i in range(self._rounds):
            edges = (edges
                     | f"both ways {i}" >> beam.FlatMap(lambda e: [e, (e[1], e[0])])
                     | f"by node {i}" >> beam.GroupByKey()
                     | f"large star {i}" >> beam.FlatMapTuple(_large_star)
                     | f"distinct large {i}" >> beam.Distinct()
                     | f"by larger node {i}" >> beam.GroupByKey()
                     | f"small star {i}" >> beam.FlatMapTuple(_small_star)
                     | f"distinct small {i}" >> beam.Distinct())
        up = edges | "up" >> beam.Map(lambda e: e)
        down = edges | "down" >> beam.Map(lambda e: (e[1], e[0]))
        unsettled = ({"up": up, "down": down}
                     | "per node" >> beam.CoGroupByKey()
                     | "unsettled" >> beam.FlatMapTuple(_unsettled)
                     | "one place" >> beam.Map(lambda e: (None, e))
                     | "gather unsettled" >> beam.GroupByKey()
                     | "settle" >> beam.FlatMapTuple(lambda _, rest: _settle(rest)))
        return ({"up": up, "down": down, "settled": unsettled}
                | "per node with settled" >> beam.CoGroupByKey()
                | "labels" >> beam.FlatMapTuple(_labels)
                | "one label" >> beam.CombinePerKey(min))
