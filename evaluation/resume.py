"""The progress file of a scoring run (DESIGN.md: every stage "can be re-run and resumes where it
stopped"): `evaluation.humaneval` appends each result as soon as the sandbox returns it, keeps the
file when the run is interrupted, and on the next run with the same samples scores only what the
file does not hold yet. It is removed once the results file is written.

One JSON object per line: a result record (`evaluation.scoring.result_record`) plus `index`, the
sample's position in the samples file. A record counts only if the sample at that position still
has the same task id and completion; a last line cut short by a kill is ignored.
"""

from __future__ import annotations

import json
import os
from typing import Sequence

from evaluation.samples import Sample


def load(path: str, samples: Sequence[Sample]) -> dict[int, dict]:
    """Result records by sample index from an earlier, interrupted run (empty when there is none)."""
    if not os.path.exists(path):
        return {}
    done: dict[int, dict] = {}
    with open(path, encoding="utf-8") as lines:
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
    return done


class Recorder:
    """Appends result records to the progress file, one flushed line each."""

    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._file = open(path, "a", encoding="utf-8")

    def add(self, index: int, record: dict) -> None:
        self._file.write(json.dumps({"index": index, **record}) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
