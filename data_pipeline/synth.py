"""Synthetic textbooks and exercises (DESIGN.md data flow: "synthetic textbooks / exercises
(OpenAI-compatible API)"): builds N prompts, asks any OpenAI-compatible server through the one LLM
client (data_pipeline.llm_client), validates the answers and writes the kept ones as record shards
that the seqio tasks read directly.

    python -m data_pipeline.synth textbook  --base-url URL --model M --num N --out DIR [...]
    python -m data_pipeline.synth exercises --base-url URL --model M --num N --out DIR [...]

Reads: nothing but the prompt data in data_pipeline/synthesis/ (and, for exercises, the embedded
exercises as few-shot examples). Prompt i is a pure function of (--seed, i).
Writes, under --out:
- `<kind>-0000i-of-0000n.jsonl`: record shards, `source` "textbook" or "exercises", ids
  `<kind>/synth-<seed>-<index>`; `meta.generation` holds the exact messages, parameters, what the
  prompt drew (topic, audience, style, domain / function name, difficulty), model and index. Exercises
  carry the embedded exercises' fields `meta.prompt/solution/tests/entry_point`. Point
  `--config.data.sources.textbook` / `.exercises` at `DIR/<kind>-*.jsonl` (or at DIR).
- `report/report.json`: requested, answered, failed (no answer), rejected by reason, kept,
  tokens, cost, wall time, and the client's counters (new vs cached answers, API calls, retries);
- `report/rejected.jsonl`: every rejected answer with its index, reason and text (no data is lost);
- `report/decontamination.json`, `work/`: the reports and intermediate shards of dedup and
  decontamination (below);
- `cache/`: the client's answer cache (unless --cache-dir): rerunning the same command after a
  crash, Ctrl-C or a budget stop requests only what has no answer yet.
Textbook sections must be 600-20000 characters, not a refusal or a chatty opener, and every fenced
Python block must parse. Exercises must parse into one function with a docstring plus its asserts,
named as the prompt asked, and pass their own tests in the evaluation sandbox (never in this
process). Then `data_pipeline.dedup` (MinHash, exact and near duplicates) and
`data_pipeline.decontaminate` (against HumanEval and every `--benchmark`) run over what is left;
what they drop is rejected as "duplicate" or "contaminated". A rerun replaces the shards and work/ of the last run.
`--batch` sends the prompts through the Batch API instead (JSONL upload, results joined on
`custom_id`; same cache, same outputs). Exit status: 0 done, 3 stopped by the budget cap (the
report says so; rerun with a higher --budget-usd to continue).
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import shutil
import sys
import time
from typing import Optional, Sequence

from data_pipeline import llm_cli
from data_pipeline.cleaning import benchmarks, contamination
from data_pipeline.llm_client import BudgetExceeded, LLMClient, LLMRequest, LLMResult
from data_pipeline.synthesis import Rejected, prompts, textbook_check

# records, exercise_check and the sandbox are imported where they are used: tensorflow (under
# records) takes seconds to import, and a textbook run sends its first request without it.

KINDS = ("textbook", "exercises")
BUDGET_EXIT_CODE = 3


def _record_id(kind: str, seed: int, index: int) -> str:
    return f"{kind}/synth-{seed}-{index:07d}"


def _generation(prompt: prompts.Prompt, model: str, seed: int, index: int) -> dict:
    return {"messages": list(prompt.messages), "params": prompt.params, "choices": prompt.choices,
            "model": model, "seed": seed, "index": index}


def _textbook_record(text: str, record_id: str, generation: dict) -> dict:
    reason = textbook_check.rejection(text)
    if reason is not None:
        raise Rejected(reason)
    title = text.strip().splitlines()[0].lstrip("# ").strip()
    return {"id": record_id, "text": text.strip() + "\n", "source": "textbook",
            "meta": {"title": title, "audience": generation["choices"]["audience"], "generation": generation}}


def _exercise_record(text: str, record_id: str, generation: dict) -> dict:
    from data_pipeline.synthesis import exercise_check

    record = exercise_check.parse_exercise(text, record_id, generation["choices"]["function_name"])
    record["meta"]["generation"] = generation
    return record


def synthesize(kind: str, *, client: LLMClient, num: int, out: str, seed: int = 0, num_shards: int = 1,
               sandbox_workers: Optional[int] = None, sandbox_timeout: float = 3.0,
               temperature: float = 0.8, max_tokens: Optional[int] = None, batch: bool = False,
               decontamination_methods: Sequence[str] = contamination.METHODS,
               benchmark_paths: Sequence[Optional[str]] = (None,)) -> dict:
    """Generates, validates and writes `num` items of `kind`; returns the report (also written).
    `benchmark_paths` are what decontamination checks against (None: HumanEval), as in
    `data_pipeline.decontaminate`. Raises BudgetExceeded after writing a report that says where
    the budget stopped the run."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: expected one of {KINDS}")
    benchmarks.load_benchmarks(benchmark_paths)  # a bad problem file stops the run before any answer is paid for
    start = time.monotonic()
    sampling = {"temperature": temperature, **({"max_tokens": max_tokens} if max_tokens else {})}
    built = prompts.build_prompts(kind, seed, num, **sampling)
    requests = [LLMRequest(list(p.messages), p.params) for p in built]
    report_dir = os.path.join(out, "report")
    os.makedirs(report_dir, exist_ok=True)
    report = {"kind": kind, "model": client.model, "base_url": client.base_url, "seed": seed, "requested": num}
    try:
        results = client.run_batch(requests) if batch else client.run(requests)
    except BudgetExceeded as stop:
        report.update(_usage(client, start), stopped_by_budget=str(stop),
                      answered=sum(r is not None and r.ok for r in stop.results))
        _write_json(os.path.join(report_dir, "report.json"), report)
        raise
    kept, rejected = _validate(kind, built, results, client.model, seed)
    if kind == "exercises" and kept:
        kept, failed = _run_in_sandbox(kept, sandbox_workers, sandbox_timeout)
        rejected += failed
    from data_pipeline import records

    cleaning = {}
    if kept:
        kept, dropped, cleaning = _dedup_and_decontaminate(kind, kept, out, num_shards, decontamination_methods,
                                                           benchmark_paths)
        rejected += dropped
    reasons = collections.Counter(r["reason"] for r in rejected)
    for stale in glob.glob(os.path.join(out, f"{kind}-*-of-*.jsonl")):
        os.remove(stale)
    shards = records.write_shards(out, kept, num_shards, prefix=kind) if kept else []
    with open(os.path.join(report_dir, "rejected.jsonl"), "w", encoding="utf-8") as f:
        for item in rejected:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    report.update(answered=sum(r.ok for r in results), failed=sum(not r.ok for r in results),
                  rejected=dict(sorted(reasons.items())), kept=len(kept), shards=shards, **cleaning,
                  **_usage(client, start))
    _write_json(os.path.join(report_dir, "report.json"), report)
    return report


def _dedup_and_decontaminate(kind: str, kept: list[dict], out: str, num_shards: int, methods: Sequence[str],
                             benchmark_paths: Sequence[Optional[str]]) -> tuple[list[dict], list[dict], dict]:
    """(records left, rejections, report paths) after `data_pipeline.dedup` and then
    `data_pipeline.decontaminate` (against `benchmark_paths`) ran over the validated records; their
    intermediate shards and reports stay in OUT/work/ and OUT/report/."""
    from data_pipeline import dedup, decontaminate, records

    work = os.path.join(out, "work")
    shutil.rmtree(work, ignore_errors=True)  # a previous run's shards would be read as input again
    records.write_shards(os.path.join(work, "validated"), kept, num_shards, prefix=kind)
    dedup.dedup(os.path.join(work, "validated"), os.path.join(work, "dedup"))
    decontamination_report = os.path.join(out, "report", "decontamination.json")
    decontaminate.decontaminate(os.path.join(work, "dedup", "records-*"), os.path.join(work, "decontaminated"),
                                decontamination_report, benchmark_paths, methods=methods)
    survivors = {r["id"] for r in records.read_records(os.path.join(work, "decontaminated"))}
    after_dedup = {r["id"] for r in records.read_records(os.path.join(work, "dedup", "records-*"))}
    with open(os.path.join(work, "dedup", "clusters.jsonl"), encoding="utf-8") as f:
        duplicate_of = {d["id"]: f"{d['match']} duplicate of {row['kept']} (similarity {d['similarity']})"
                        for row in map(json.loads, f) for d in row["dropped"]}
    with open(decontamination_report, encoding="utf-8") as f:
        matched = {d["id"]: d["matches"] for d in json.load(f)["dropped_records"]}
    left, dropped = [], []
    for record in kept:
        if record["id"] in survivors:
            left.append(record)
            continue
        if record["id"] in after_dedup:  # bad input (empty, huge) is listed in the stages' own reports
            reason, detail = ("contaminated", json.dumps(matched[record["id"]])) if record["id"] in matched else (
                "dropped by decontaminate", "see report/decontamination.json")
        else:
            reason, detail = ("duplicate", duplicate_of[record["id"]]) if record["id"] in duplicate_of else (
                "dropped by dedup", "see work/dedup/dedup_report.json")
        dropped.append({"index": record["meta"]["generation"]["index"], "reason": reason, "detail": detail,
                        "text": record["text"]})
    reports = {"dedup_report": os.path.join(work, "dedup", "dedup_report.json"),
               "decontamination_report": decontamination_report}
    return left, dropped, reports


def _usage(client: LLMClient, start: float) -> dict:
    stats = client.stats
    return {"tokens": {"prompt": stats.new_usage.prompt_tokens + stats.cached_usage.prompt_tokens,
                       "completion": stats.new_usage.completion_tokens + stats.cached_usage.completion_tokens},
            "cost_usd": stats.cost_usd, "wall_s": round(time.monotonic() - start, 3),
            "client": stats.as_dict()}


def _validate(kind: str, built: Sequence[prompts.Prompt], results: Sequence[LLMResult], model: str,
              seed: int) -> tuple[list[dict], list[dict]]:
    """(records, rejections) of the answers; a request with no answer is a rejection too."""
    make = _textbook_record if kind == "textbook" else _exercise_record
    kept, rejected = [], []
    for index, (prompt, result) in enumerate(zip(built, results)):
        if not result.ok:
            rejected.append({"index": index, "reason": "no answer", "detail": result.error, "text": None})
            continue
        try:
            kept.append(make(result.text, _record_id(kind, seed, index), _generation(prompt, model, seed, index)))
        except Rejected as e:
            rejected.append({"index": index, "reason": e.reason, "detail": str(e), "text": result.text})
    return kept, rejected


def _run_in_sandbox(exercises: list[dict], workers: Optional[int], timeout: float) -> tuple[list[dict], list[dict]]:
    from data_pipeline.synthesis import exercise_check
    from evaluation.sandbox import SandboxPool

    with SandboxPool(workers) as pool:
        verdicts = exercise_check.verify(exercises, pool, timeout)
    kept, failed = [], []
    for exercise, verdict in zip(exercises, verdicts):
        if verdict.passed:
            kept.append(exercise)
        else:
            reason = "tests timed out" if verdict.result == "timed out" else "tests failed"
            failed.append({"index": exercise["meta"]["generation"]["index"], "reason": reason,
                           "detail": verdict.result, "text": exercise["meta"]["prompt"] + exercise["meta"]["solution"]
                           + "\n".join(exercise["meta"]["tests"])})
    return kept, failed


def _write_json(path: str, value: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_pipeline.synth", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--num", type=int, required=True, help="how many prompts (prompt i is a function of --seed, i)")
    parser.add_argument("--out", required=True, help="output directory (local); the answer cache defaults to OUT/cache")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-shards", type=int, default=1)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--sandbox-workers", type=int, default=None)
    parser.add_argument("--sandbox-timeout", type=float, default=3.0)
    parser.add_argument("--decontamination-methods", default=",".join(contamination.METHODS),
                        help="methods of data_pipeline.decontaminate to run (comma-separated)")
    parser.add_argument("--benchmark", action="append", default=[],
                        help="HumanEval- or MBPP-format problem file to decontaminate against, besides HumanEval "
                             "(repeatable)")
    parser.add_argument("--batch", action="store_true",
                        help="send the prompts through the Batch API (JSONL upload, results joined on custom_id)")
    llm_cli.add_client_arguments(parser)
    args = parser.parse_args(argv)
    if args.num < 1:
        parser.error("--num must be at least 1")
    client = llm_cli.client_from_args(args, default_cache_dir=os.path.join(args.out, "cache"), description=args.kind)
    try:
        report = synthesize(args.kind, client=client, num=args.num, out=args.out, seed=args.seed,
                            num_shards=args.num_shards, sandbox_workers=args.sandbox_workers,
                            sandbox_timeout=args.sandbox_timeout, temperature=args.temperature,
                            max_tokens=args.max_tokens, batch=args.batch,
                            decontamination_methods=[m for m in args.decontamination_methods.split(",") if m],
                            benchmark_paths=[None] + args.benchmark)
    except BudgetExceeded as stop:
        print(f"stopped: {stop}", file=sys.stderr)
        return BUDGET_EXIT_CODE
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    print(json.dumps({k: report[k] for k in ("requested", "answered", "failed", "rejected", "kept", "cost_usd",
                                             "wall_s")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
