"""The progress file of a scoring run (DESIGN.md: every stage "can be re-run and resumes where it
stopped"): `evaluation.humaneval` appends each result as soon as the sandbox returns it, keeps the
file when the run is interrupted, and on the next run with the same samples scores only what the
file does not hold yet. It is removed once the results file is written.

The first line records what the verdicts were computed against (`against`: a digest of the
problems, the timeout, the memory limit and the sandbox's isolation level); a file computed
against anything else is ignored, with the reason, and rewritten. Then one JSON object per line: a
result record (`evaluation.scoring.result_record`) plus `index`, the sample's position in the
samples file. A record counts only if the sample at that position still has the same task id and
completion; a last line cut short by a kill is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Mapping, Optional, Sequence

from evaluation.problems import Problem
from evaluation.samples import Sample


def against(problems: Mapping[str, Problem], timeout: float, memory_bytes: int, isolation_level: str) -> dict:
    """What a verdict depends on besides its sample, as the progress file records it."""
    digest = hashlib.sha256()
    for problem in problems.values():
        digest.update(json.dumps([problem.task_id, problem.prompt, problem.test, problem.entry_point]).encode())
        digest.update(b"\n")
    return {"problems": digest.hexdigest(), "timeout": timeout, "memory_bytes": memory_bytes,
            "isolation": isolation_level}


def load(path: str, samples: Sequence[Sample], now: dict) -> tuple[dict[int, dict], Optional[str]]:
    """(result records by sample index from an earlier, interrupted run, None) when the file was
    computed against `now`; ({}, why not) when it was not; ({}, None) when there is no file."""
    if not os.path.exists(path):
        return {}, None
    done: dict[int, dict] = {}
    with open(path, encoding="utf-8", errors="replace") as lines:
        try:
            header = json.loads(next(lines, ""))
        except json.JSONDecodeError:
            header = None
        then = header.get("computed_against") if isinstance(header, dict) else None
        if not isinstance(then, dict):
            return {}, "it does not say what it was computed against"
        changed = [f"{key} {then.get(key)!r} then, {value!r} now"
                   for key, value in now.items() if then.get(key) != value]
        if changed:
            return {}, "it was computed against something else: " + "; ".join(changed)
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            index = record.pop("index", None) if isinstance(record, dict) else None
            if (isinstance(index, int) and 0 <= index < len(samples)
                    and record.get("task_id") == samples[index].task_id
                    and record.get("completion") == samples[index].completion
                    and isinstance(record.get("passed"), bool) and isinstance(record.get("result"), str)):
                done[index] = record
    return done, None


class Recorder:
    """Appends result records to the progress file, one flushed line each; `keep` False starts the
    file afresh with the line that says what its records are computed against."""

    def __init__(self, path: str, now: dict, keep: bool) -> None:
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._file = open(path, "a" if keep else "w", encoding="utf-8")
        if not keep:
            self._file.write(json.dumps({"computed_against": now}) + "\n")
            self._file.flush()

    def add(self, index: int, record: dict) -> None:
        self._file.write(json.dumps({"index": index, **record}) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
