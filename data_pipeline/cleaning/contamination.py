"""The per-record decision of the decontamination stage: which benchmark problems a record matches,
by which method, with what score. A pure function of the record and the benchmark index, so the
single process and the Beam form decide the same.

Methods (each with its threshold, recorded in the report):
- `substring`: a whitespace-normalised docstring or canonical solution of at least `min_chars`
  characters occurs in the whitespace-normalised record (score 1);
- `ngram`: the share of a problem's distinct normalised-token 13-grams found in the record is at
  least `ngram_threshold`;
- `ast`: the AST match rate tau of some function in the record against a problem's solution
  function is at least `tau` (solutions under `ast_min_labels` labels are too generic to compare);
- `embedding`: cosine similarity of a record's unit (each function, or the whole text when
  nothing parses) to a problem's prompt + solution is at least `embedding_threshold`.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

from data_pipeline.cleaning import ast_match, benchmarks, ngram_index

METHODS = ("substring", "ngram", "ast", "embedding")


@dataclasses.dataclass(frozen=True)
class Thresholds:
    min_chars: int = 40
    ngram_n: int = ngram_index.DEFAULT_N
    ngram_threshold: float = 0.2
    tau: float = 0.9
    ast_min_labels: int = 20
    embedding_threshold: float = 0.9

    def as_report(self, methods: Sequence[str], embedder_name: Optional[str] = None,
                  embedder_dim: Optional[int] = None) -> dict:
        every = {
            "substring": {"min_chars": self.min_chars, "whitespace": "normalised"},
            "ngram": {"n": self.ngram_n, "threshold": self.ngram_threshold,
                      "score": "share of the problem's distinct n-grams found in the record"},
            "ast": {"tau": self.tau, "min_labels": self.ast_min_labels,
                    "score": "difflib ratio of normalised AST label sequences, per function"},
            "embedding": {"threshold": self.embedding_threshold, "model": embedder_name,
                          "dim": embedder_dim, "score": "cosine similarity"},
        }
        return {m: every[m] for m in methods}


@dataclasses.dataclass(frozen=True)
class Match:
    benchmark: str
    task_id: str
    method: str
    score: float
    where: str = ""

    def as_dict(self) -> dict:
        out = {"benchmark": self.benchmark, "task_id": self.task_id, "method": self.method,
               "score": round(self.score, 4)}
        if self.where:
            out["where"] = self.where
        return out


@dataclasses.dataclass(frozen=True)
class Verdict:
    matches: tuple[Match, ...]
    parsed: bool  # False when the AST method found no Python in the record


def check_methods(methods: Sequence[str]) -> None:
    if not methods or set(methods) - set(METHODS):
        raise ValueError(f"methods must be a non-empty subset of {METHODS}, got {list(methods)}")


class ContaminationChecker:
    """Holds the benchmark side (built once) and checks records one at a time."""

    def __init__(self, problems: Sequence[benchmarks.BenchmarkProblem],
                 thresholds: Thresholds = Thresholds(), methods: Sequence[str] = METHODS,
                 embedder_spec: str = "default"):
        check_methods(methods)
        self.problems = list(problems)
        self.thresholds = thresholds
        self.methods = tuple(m for m in METHODS if m in methods)
        self.ngrams = ngram_index.NGramIndex([p.text for p in problems], thresholds.ngram_n)
        self.ast_index = ast_match.ASTIndex(
            [(i, p.shape) for i, p in enumerate(problems)
             if p.shape is not None and len(p.shape) >= thresholds.ast_min_labels])
        self.needles = [(i, needle) for i, p in enumerate(problems) for needle in p.needles
                        if len(needle) >= thresholds.min_chars]
        self.embedding = None
        if "embedding" in self.methods:
            from data_pipeline.cleaning import embedding_match

            self.embedding = embedding_match.EmbeddingIndex(
                [p.text for p in problems], embedder_spec)

    def report_settings(self) -> dict:
        embedder = self.embedding.embedder if self.embedding is not None else None
        return {"methods": self.thresholds.as_report(
                    self.methods, embedder and embedder.name, embedder and embedder.dim),
                "ast_compared_problems": len(self.ast_index.owners),
                "substring_needles": len(self.needles)}

    def _match(self, owner: int, method: str, score: float, where: str = "") -> Match:
        problem = self.problems[owner]
        return Match(problem.benchmark, problem.task_id, method, score, where)

    def check(self, text: str) -> Verdict:
        t = self.thresholds
        found: list[Match] = []
        if "substring" in self.methods:
            flat = benchmarks.normalise_space(text)
            hit = sorted({owner for owner, needle in self.needles if needle in flat})
            found += [self._match(owner, "substring", 1.0) for owner in hit]
        if "ngram" in self.methods:
            found += [self._match(owner, "ngram", share)
                      for owner, share in sorted(self.ngrams.overlaps(text).items())
                      if share >= t.ngram_threshold]
        parsed = True
        units = None
        if "ast" in self.methods or "embedding" in self.methods:
            trees = ast_match.parse_code(text)
            parsed = bool(trees)
            units = list(ast_match.function_units(trees))
        if "ast" in self.methods:
            best: dict[int, tuple[float, str]] = {}
            for unit in units:
                for owner, rate in self.ast_index.matches(unit.shape.labels, t.tau):
                    if rate > best.get(owner, (0.0, ""))[0]:
                        best[owner] = (rate, f"{unit.shape.name}:{unit.shape.line}")
            found += [self._match(owner, "ast", rate, where)
                      for owner, (rate, where) in sorted(best.items())]
        if self.embedding is not None:
            sources = [u.source for u in units if u.outermost] or [text]
            found += [self._match(owner, "embedding", score)
                      for owner, score in self.embedding.matches(sources, t.embedding_threshold)]
        return Verdict(tuple(found), parsed)
