"""Generated exercises (DESIGN.md data flow: "exercises: run in sandbox, keep passing"): parsed with
`ast` into the embedded exercises' record fields (`meta.prompt/solution/tests/entry_point`, by the
same parser as `data_pipeline.embedded_data`), then each solution is run against its own tests in
`evaluation.sandbox`, never in this process.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

from data_pipeline import embedded_data
from data_pipeline.synthesis import Rejected
from evaluation.sandbox import Job, SandboxPool, Verdict

_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[^\n]*\n(.*?)```", re.DOTALL)
MIN_TESTS = 1


def code_of(answer: str) -> str:
    """The code of an answer: its fenced blocks joined, or the whole answer when it has none."""
    blocks = _FENCE.findall(answer)
    return "\n".join(blocks) if blocks else answer


def parse_exercise(answer: str, record_id: str, expected_name: Optional[str] = None) -> dict:
    """The exercise record (id `record_id`) in an answer; Rejected says why there is none."""
    try:
        found = embedded_data.exercises_from_source(code_of(answer), record_id, "synthetic", "")
    except embedded_data.EmbeddedDataError as e:
        reason = "syntax error" if isinstance(e.__cause__, SyntaxError) else "not an exercise"
        raise Rejected(reason, str(e)) from None
    if len(found) != 1:
        raise Rejected("not one exercise", f"{len(found)} functions with tests")
    record = {**found[0], "id": record_id}
    record["meta"].pop("file")
    if expected_name is not None and record["meta"]["entry_point"] != expected_name:
        raise Rejected("wrong function name", f"{record['meta']['entry_point']} instead of {expected_name}")
    return record


def exercise_job(meta: dict, timeout: float = 3.0) -> Job:
    """The sandbox job that runs an exercise's solution (untrusted) against its own asserts (the
    trusted test side, calling the solution through the sandbox's boundary)."""
    return Job(meta["prompt"] + meta["solution"], "\n".join(meta["tests"]) + "\n", meta["entry_point"], timeout)


def verify(exercises: Sequence[dict], pool: SandboxPool, timeout: float = 3.0) -> list[Verdict]:
    """Sandbox verdicts of exercise records, in order."""
    return pool.run([exercise_job(e["meta"], timeout) for e in exercises])
