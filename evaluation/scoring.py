"""Scores samples in the sandbox (DESIGN.md data flow: "sandbox -> pass@k"): one verdict per
sample, then the per-problem counts and the unbiased pass@k summary."""

from __future__ import annotations

import collections
from typing import Mapping, Sequence

from evaluation.pass_at_k import pass_at_k
from evaluation.problems import Problem, program, test_code
from evaluation.samples import Sample
from evaluation.sandbox import Job, SandboxPool


def score(samples: Sequence[Sample], problems: Mapping[str, Problem], pool: SandboxPool, *,
          timeout: float = 3.0, ks: Sequence[int] = (1, 10, 100), progress: bool = False) -> tuple[list[dict], dict]:
    """(result records in sample order, summary) for `samples` run against `problems`."""
    jobs = [Job(program(problems[s.task_id], s.completion), test_code(problems[s.task_id]),
                problems[s.task_id].entry_point, timeout) for s in samples]
    verdicts = pool.run(jobs, progress=progress, description="tests")
    results = []
    per_task: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for sample, verdict in zip(samples, verdicts):
        record = {"task_id": sample.task_id, "completion": sample.completion}
        if sample.completion_id is not None:
            record["completion_id"] = sample.completion_id
        record.update(passed=verdict.passed, result=verdict.result)
        results.append(record)
        per_task[sample.task_id][0] += 1
        per_task[sample.task_id][1] += verdict.passed
    summary = {**pass_at_k([tuple(counts) for counts in per_task.values()], ks),
               "problems": len(per_task), "samples": len(samples),
               "passed": sum(verdict.passed for verdict in verdicts),
               "isolation": pool.launcher.name}
    return results, summary


