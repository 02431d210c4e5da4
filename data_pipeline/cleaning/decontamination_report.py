"""The decontamination stage's per-shard work and its report, shared by the single process
(`data_pipeline.decontaminate`) and the Beam form, so both write the same files.

Report (`REPORT.json`): the benchmarks and their problem counts; every method with its threshold;
counts (read, kept, dropped, not parseable for the AST method); `dropped_records`, each with its
id, source, location and every match (benchmark, task id, method, score, and for the AST method
the matching function); `per_problem`, for every benchmark problem, how many records matched it,
in all and by method; and the bad input.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

from data_pipeline.cleaning import benchmarks, contamination, intake

# Enough unparseable ids to look at; the count says how many there were.
_MAX_LISTED_UNPARSED = 20


@dataclasses.dataclass
class ShardOutcome:
    intake: intake.ShardIntake
    settings: dict  # the checker's methods and thresholds
    kept: int = 0
    dropped: list[dict] = dataclasses.field(default_factory=list)
    unparsed: int = 0
    unparsed_ids: list[str] = dataclasses.field(default_factory=list)


def decontaminate_shard(path: str, index: int, num_shards: int, out_dir: str,
                        checker: contamination.ContaminationChecker, max_chars: int,
                        fmt: str) -> ShardOutcome:
    """Streams one shard through the checker and writes its kept records as output shard
    `index`."""
    outcome = ShardOutcome(intake.ShardIntake(path), checker.report_settings())

    def kept_records():
        for entry in intake.scan_shard(path, index, outcome.intake, max_chars):
            verdict = checker.check(entry.record["text"])
            if not verdict.parsed:
                outcome.unparsed += 1
                if len(outcome.unparsed_ids) < _MAX_LISTED_UNPARSED:
                    outcome.unparsed_ids.append(entry.record["id"])
            if verdict.matches:
                outcome.dropped.append({"key": entry.key, "id": entry.record["id"],
                                        "source": entry.record["source"],
                                        "location": entry.location,
                                        "matches": [m.as_dict() for m in verdict.matches]})
            else:
                yield entry.record

    outcome.kept = intake.write_output_shard(out_dir, index, num_shards, kept_records(), fmt)
    return outcome


def build_report(input_pattern: str, benchmark_paths: Sequence[Optional[str]],
                 problems: Sequence[benchmarks.BenchmarkProblem], methods: Sequence[str],
                 outcomes: Sequence[ShardOutcome]) -> dict:
    outcomes = sorted(outcomes, key=lambda o: o.intake.path)
    settings = outcomes[0].settings
    if any(o.settings != settings for o in outcomes):
        raise ValueError("shards were checked with different settings")
    dropped = sorted((d for o in outcomes for d in o.dropped), key=lambda d: d["key"])
    per_problem: dict[str, dict[str, dict]] = {}
    for problem in problems:
        per_problem.setdefault(problem.benchmark, {})[problem.task_id] = {
            "records": 0, "by_method": {m: 0 for m in methods}}
    for record in dropped:
        seen = set()
        for match in record["matches"]:
            row = per_problem[match["benchmark"]][match["task_id"]]
            row["by_method"][match["method"]] += 1
            if (match["benchmark"], match["task_id"]) not in seen:
                seen.add((match["benchmark"], match["task_id"]))
                row["records"] += 1
    by_method = {m: sum(any(x["method"] == m for x in d["matches"]) for d in dropped)
                 for m in methods}
    return {
        "input": input_pattern,
        "benchmarks": {benchmarks.benchmark_name(p): len(per_problem[benchmarks.benchmark_name(p)])
                       for p in benchmark_paths},
        **settings,
        "records_read": sum(o.intake.records for o in outcomes),
        "kept": sum(o.kept for o in outcomes),
        "dropped": len(dropped),
        "dropped_by_method": by_method,
        "not_parseable_for_ast": {"records": sum(o.unparsed for o in outcomes),
                                  "ids": [i for o in outcomes for i in o.unparsed_ids]
                                  [:_MAX_LISTED_UNPARSED]},
        "dropped_records": [{k: v for k, v in d.items() if k != "key"} for d in dropped],
        "per_problem": per_problem,
        "bad_input": intake.bad_input_summary([o.intake for o in outcomes]),
    }
