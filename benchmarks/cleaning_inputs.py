"""What the cleaning-stage benchmarks (dedup_speed.py, decontamination_speed.py) share: the real
files they time (this interpreter's standard library, tests excluded) and best-of-N timing."""

from __future__ import annotations

import os
import sys
import time
from typing import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data_pipeline import stdlib_source  # noqa: E402


def stdlib_corpus(count: int) -> list[dict]:
    """The first `count` non-test standard-library files with any text, as records."""
    files = [f for f in stdlib_source.stdlib_files() if not f.startswith(("test/", "idlelib/"))]
    return [r for r in map(stdlib_source.stdlib_record, files[:count]) if r["text"].strip()]


def best_seconds(fn: Callable, repeat: int):
    """(fastest wall time of `repeat` calls, the last call's result)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result
