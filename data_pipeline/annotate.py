"""`python -m data_pipeline.annotate`: DESIGN.md's "annotate (LLM, sample)" step, the labels that
`data_pipeline.classify train` learns from.

Samples `--num` records from the record shards or Parquet files `--input` reproducibly (the records whose
sha256(seed, id) are smallest: the same sample for the same seed, whatever the shard order, in one
pass), asks the model at `--base-url` to rate each file's opening against the rubric kept in the
repository (`data_pipeline/curation/rubric.md`, versioned), through the one LLM client
(`data_pipeline.llm_client`: retries, cache, budget), and writes `--out`, one line per sampled
file:

    {"id", "score", "rationale", "model", "rubric_version", "meta": {"lines_shown", "lines_total",
     "sha256", "attempts"}}

An answer that is not the rubric's JSON object is asked again (`--max-attempts` in all); after
that the line is a failure, `"score": null` with the error and every raw answer, never a guessed
score. The summary printed at the end is also written to LABELS.report.json (LABELS without
`.jsonl`). Answers are cached (default `OUT.cache/`), so a rerun or a run resumed after a crash or a
budget stop asks nothing twice.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import json
import os
import re
import sys
from typing import Optional, Sequence

from data_pipeline import llm_cli, records
from data_pipeline.curation import annotation_prompt, filter_inputs
from data_pipeline.llm_client import BudgetExceeded, LLMClient, LLMRequest, LLMResult

BUDGET_EXIT_CODE = 3
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_MAX_TOKENS = 200


def sample_records(input_pattern: str, num: int, seed: int) -> list[dict]:
    """`num` records of record shards or The Stack's Parquet files, chosen by the smallest
    sha256(seed, id), in that order (one pass, `num` records held in memory)."""
    def rank(record: dict) -> str:
        return hashlib.sha256(f"{seed}\0{record['id']}".encode("utf-8")).hexdigest()

    return heapq.nsmallest(num, filter_inputs.good_records(input_pattern), key=rank)


def _label(record: dict, result: Optional[LLMResult], model: str, rubric_version: str, shown_lines: int) -> dict:
    text = record["text"]
    meta = {"lines_shown": shown_lines, "lines_total": len(text.splitlines()),
            "sha256": hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(),
            "attempts": result.attempts if result else 0}
    label = {"id": record["id"], "score": None, "rationale": None, "model": model,
             "rubric_version": rubric_version, "meta": meta}
    if result is None:
        label["error"] = "not asked: the budget cap stopped the run first"
    elif result.ok:
        label["score"], label["rationale"] = result.value
    else:
        label["error"] = result.error
        label["raw_answers"] = result.raw_answers
    return label


def annotate(input_pattern: str, out_path: str, *, client: LLMClient, num: int, seed: int = 0,
             rubric_path: str = annotation_prompt.RUBRIC_PATH, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
             max_tokens: int = DEFAULT_MAX_TOKENS, sample_out: Optional[str] = None) -> dict:
    """Labels a sample of `num` records into `out_path`; returns a summary. `sample_out`, when
    given, receives the sampled records as shards (what `classify train` joins the labels with,
    without reading the whole input again). On a budget stop the labels obtained so far are
    written (unasked files as failures) and BudgetExceeded is raised."""
    if num < 1:
        raise ValueError(f"num must be at least 1, got {num}")
    rubric = annotation_prompt.load_rubric(rubric_path)
    sample = sample_records(input_pattern, num, seed)
    if sample_out:
        records.write_shards(sample_out, sample, num_shards=1, prefix="sample")
    shown = [annotation_prompt.opening(r["text"]) for r in sample]
    requests = [LLMRequest(annotation_prompt.messages(rubric, r["id"], text, len(r["text"].splitlines())),
                           params={"temperature": 0.0, "max_tokens": max_tokens})
                for r, (text, _) in zip(sample, shown)]
    stop: Optional[BudgetExceeded] = None
    try:
        results: list[Optional[LLMResult]] = list(client.run(requests, parse=annotation_prompt.parse_answer,
                                                             max_parse_attempts=max_attempts))
    except BudgetExceeded as e:
        stop, results = e, e.results
    labels = [_label(r, result, client.model, rubric.version, lines)
              for r, result, (_, lines) in zip(sample, results, shown)]
    _write_jsonl(out_path, labels)
    if stop:
        raise stop
    summary = {"out": out_path, "sampled": len(sample), "labelled": sum(l["score"] is not None for l in labels),
               "failed": sum(l["score"] is None for l in labels), "rubric_version": rubric.version,
               "client": client.stats.as_dict()}
    with open(report_path(out_path), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    return summary


def report_path(labels_path: str) -> str:
    """Where the run's summary (counts, the client's requests, tokens and cost) is written."""
    return re.sub(r"\.jsonl$", "", labels_path) + ".report.json"


def _write_jsonl(path: str, lines: Sequence[dict]) -> None:
    # Written whole, then renamed: a crash leaves the previous labels file, never half of one.
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m data_pipeline.annotate",
        description="Rate a reproducible sample of files for educational value with an LLM. Reads record "
                    "shards IN (file, directory or glob, local or gs://) and the rubric "
                    "(data_pipeline/curation/rubric.md); writes LABELS, one JSON line per sampled file "
                    "(id, score 1-5 or null on failure, rationale, model, rubric_version, meta), and "
                    "caches every answer in --cache-dir (default LABELS.cache) so reruns ask nothing twice.")
    parser.add_argument("--input", required=True, help="record shards to sample from")
    parser.add_argument("--out", required=True, help="labels JSONL to write")
    parser.add_argument("--num", type=int, required=True, help="how many files to sample")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--sample-out", default=None,
                        help="directory for the sampled records as record shards (classify train's --input)")
    parser.add_argument("--rubric", default=annotation_prompt.RUBRIC_PATH, help="rubric file (first line: "
                        "rubric_version: V)")
    parser.add_argument("--max-attempts", type=int, default=DEFAULT_MAX_ATTEMPTS,
                        help="answers asked per file before it is recorded as a failure")
    parser.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS, help="answer length cap")
    llm_cli.add_client_arguments(parser)
    args = parser.parse_args(argv)
    client = llm_cli.client_from_args(args, default_cache_dir=f"{args.out}.cache", description="annotate")
    try:
        summary = annotate(args.input, args.out, client=client, num=args.num, seed=args.seed,
                           rubric_path=args.rubric, max_attempts=args.max_attempts, max_tokens=args.max_tokens,
                           sample_out=args.sample_out)
    except BudgetExceeded as stop:
        print(f"stopped: {stop}", file=sys.stderr)
        return BUDGET_EXIT_CODE
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
