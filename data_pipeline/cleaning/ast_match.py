"""The paper's AST match rate tau (phi-1, section 5.2): a function's syntax tree, with identifiers
and literals normalised, as a sequence of node labels; tau is difflib's match ratio of two such
sequences (1 = the same tree). Renaming, reformatting (`ast.unparse`), changing comments or the
docstring leave tau at 1; every function subtree of a record (nested ones and methods included)
is compared with each benchmark solution, so a copy is found inside a larger file.

Normalisation: names of variables, arguments and functions become their node kind (`Name`, `arg`,
`FunctionDef`); literals become their type (`Constant:int`); a leading docstring is dropped;
attribute names (`.append`) stay, since renaming a solution's own identifiers does not change the
library calls it makes.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import re
from typing import Iterator, Sequence

import numpy as np

_FENCED_PYTHON = re.compile(r"^```(?:python|py)[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _docstring(node: ast.AST) -> ast.AST | None:
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return body[0]
    return None


def _label_tree(node: ast.AST, out: list[str], spans: list, inside_function: bool) -> None:
    """Appends the labels of `node`'s subtree to `out` in pre-order; for every function in it,
    appends (node, start, end, outermost) to `spans`, its labels being out[start:end]. One pass
    over the tree serves every nested function."""
    if isinstance(node, ast.Constant):
        out.append(f"Constant:{type(node.value).__name__}")
        return
    start = len(out)
    out.append(type(node).__name__)
    if isinstance(node, ast.Attribute):
        out.append(f".{node.attr}")
    is_function = isinstance(node, _FUNCTIONS)
    skip = _docstring(node) if is_function else None
    for field in node._fields:
        value = getattr(node, field, None)
        children = value if isinstance(value, list) else (value,)
        for child in children:
            if isinstance(child, ast.AST) and child is not skip \
                    and not isinstance(child, ast.expr_context):
                _label_tree(child, out, spans, inside_function or is_function)
    if is_function:
        spans.append((node, start, len(out), not inside_function))


def function_labels(function: ast.AST) -> list[str]:
    out: list[str] = []
    _label_tree(function, out, [], False)
    return out


@dataclasses.dataclass(frozen=True)
class FunctionShape:
    name: str
    line: int
    labels: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class FunctionUnit:
    """A function of a record: its shape, its source lines, and whether it is outermost (not
    nested in another function; methods count as outermost)."""

    shape: FunctionShape
    source: str
    outermost: bool


def parse_code(text: str) -> list[tuple[str, ast.Module]]:
    """(source, tree): the text as Python, or else its fenced ```python blocks that parse (for
    markdown such as the textbook); an empty list when nothing parses."""
    try:
        return [(text, ast.parse(text))]
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        pass
    trees = []
    for block in _FENCED_PYTHON.findall(text):
        try:
            trees.append((block, ast.parse(block)))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
    return trees


def function_units(parsed: Sequence[tuple[str, ast.Module]]) -> Iterator[FunctionUnit]:
    """Every function of the parsed code, in source order. A tree too deep to walk yields
    nothing."""
    for source, tree in parsed:
        out: list[str] = []
        spans: list = []
        try:
            _label_tree(tree, out, spans, False)
        except RecursionError:
            continue
        lines = source.splitlines(keepends=True)
        for node, start, end, outermost in sorted(spans, key=lambda s: s[1]):
            yield FunctionUnit(FunctionShape(node.name, node.lineno, tuple(out[start:end])),
                               "".join(lines[node.lineno - 1:node.end_lineno]), outermost)


def match_rate(a: Sequence[str], b: Sequence[str]) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


class ASTIndex:
    """The benchmark solutions' label sequences, with label-count vectors that bound tau from
    above (2 * shared labels / total labels), so most pairs are ruled out without difflib."""

    def __init__(self, shapes: Sequence[tuple[int, Sequence[str]]]):
        self.owners = [owner for owner, _ in shapes]
        self.sequences = [list(labels) for _, labels in shapes]
        vocab: dict[str, int] = {}
        for labels in self.sequences:
            for label in labels:
                vocab.setdefault(label, len(vocab))
        self.vocab = vocab
        self.counts = np.zeros((len(self.sequences), len(vocab)), np.int32)
        for row, labels in enumerate(self.sequences):
            np.add.at(self.counts[row], [vocab[label] for label in labels], 1)
        self.lengths = self.counts.sum(1)
        self.matchers = [difflib.SequenceMatcher(None, autojunk=False) for _ in self.sequences]
        for matcher, labels in zip(self.matchers, self.sequences):
            matcher.set_seq2(labels)

    def matches(self, labels: Sequence[str], tau: float) -> Iterator[tuple[int, float]]:
        """(owner, match rate) for every benchmark solution with match rate >= tau."""
        if not self.sequences:
            return
        counts = np.zeros(len(self.vocab), np.int32)
        known = [self.vocab[label] for label in labels if label in self.vocab]
        np.add.at(counts, known, 1)
        bound = 2.0 * np.minimum(self.counts, counts).sum(1) / (self.lengths + len(labels))
        for row in np.flatnonzero(bound >= tau):
            matcher = self.matchers[row]
            matcher.set_seq1(list(labels))
            rate = matcher.ratio()
            if rate >= tau:
                yield self.owners[row], rate
