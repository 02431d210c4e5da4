"""Decontamination throughput (files per second) of `data_pipeline.decontaminate` on real
standard-library files against HumanEval's 164 problems, beside a naive pairwise 13-gram scan, in
one run.

    python benchmarks/decontamination_speed.py [--files 300] [--repeat 3] [--embedding] [--beam]

Input: the first N non-test .py files of this interpreter's standard library as one JSONL shard.
- ours, n-gram only: `decontaminate(..., methods=("ngram",))`, end to end (read, the index built
  once, one pass over each file's 13-grams, write the kept shard and the report);
- ours, substring + n-gram + AST: the same with the default methods except embedding (with
  --embedding, all four, through data_pipeline.embedder);
- ours, n-gram index in memory: `NGramIndex.overlaps` alone on the texts already in memory, the
  like-for-like peer of the naive scan;
- naive pairwise scan: the same 13-gram decision with no index, on texts already in memory: per
  file, its 13-gram set intersected with each problem's set in turn. Its cost grows with the
  number of problems; the index's does not.
- with --beam: the Beam form (DirectRunner, start-up included) with the default methods.
The n-gram rows decide the same records (their drop counts are printed). Best of --repeat runs each.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from cleaning_inputs import best_seconds, stdlib_corpus

from data_pipeline import decontaminate, records
from data_pipeline.cleaning import benchmarks, contamination, ngram_index, shingles

NO_EMBEDDING = ("substring", "ngram", "ast")


def naive_scan(texts: list[str], problems, n: int, threshold: float) -> int:
    problem_grams = [shingles.ngrams(shingles.normalised_tokens(p.text), n) for p in problems]
    dropped = 0
    for text in texts:
        grams = shingles.ngrams(shingles.normalised_tokens(text), n)
        if any(len(grams & pg) >= threshold * len(pg) for pg in problem_grams if pg):
            dropped += 1
    return dropped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--embedding", action="store_true")
    parser.add_argument("--beam", action="store_true")
    args = parser.parse_args()
    data = stdlib_corpus(args.files)
    thresholds = contamination.Thresholds()
    full = contamination.METHODS if args.embedding else NO_EMBEDDING
    megabytes = sum(len(r["text"].encode()) for r in data) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        shard = os.path.join(tmp, "in.jsonl")
        records.write_shard(shard, data)

        def ours(methods, beam_args=None):
            return decontaminate.decontaminate(shard, os.path.join(tmp, "out"),
                                               os.path.join(tmp, "report.json"),
                                               methods=methods, beam_args=beam_args)

        ngram_s, ngram_report = best_seconds(lambda: ours(("ngram",)), args.repeat)
        full_s, full_report = best_seconds(lambda: ours(full), args.repeat)
        problems = benchmarks.load_benchmarks()
        naive_s, naive_dropped = best_seconds(
            lambda: naive_scan([r["text"] for r in data], problems, thresholds.ngram_n,
                               thresholds.ngram_threshold), args.repeat)
        index = ngram_index.NGramIndex([p.text for p in problems], thresholds.ngram_n)
        index_s, index_dropped = best_seconds(
            lambda: sum(any(share >= thresholds.ngram_threshold
                            for share in index.overlaps(r["text"]).values()) for r in data),
            args.repeat)
        print(f"{len(data)} files, {megabytes:.1f} MB, against {len(problems)} HumanEval problems")
        print(f"ours, 13-gram index (end to end)     {len(data) / ngram_s:8.1f} files/s")
        print(f"ours, {'+'.join(full):28s}   {len(data) / full_s:8.1f} files/s")
        print(f"ours, 13-gram index (in memory)      {len(data) / index_s:8.1f} files/s")
        print(f"naive pairwise 13-gram (in memory)   {len(data) / naive_s:8.1f} files/s")
        print(f"ratio ours n-gram in memory / naive  {naive_s / index_s:8.2f}x")
        print(f"ratio ours n-gram end to end / naive {naive_s / ngram_s:8.2f}x")
        print(f"ratio ours {'+'.join(full)} / naive {naive_s / full_s:8.2f}x")
        print(f"dropped: n-gram {ngram_report['dropped']} (in memory {index_dropped}), naive "
              f"{naive_dropped}, "
              f"{'+'.join(full)} {full_report['dropped']}")
        if args.beam:
            beam_s, _ = best_seconds(lambda: ours(full, []), 1)
            print(f"ours on Beam (DirectRunner)          {len(data) / beam_s:8.1f} files/s")


if __name__ == "__main__":
    main()
