"""Dedup throughput (files per second) of `data_pipeline.dedup` on real standard-library files,
beside a single-threaded datasketch baseline doing the same near-duplicate search, in one run.

    python benchmarks/dedup_speed.py [--files 600] [--repeat 3] [--beam]

Input: the first N non-test .py files of this interpreter's standard library, plus one planted
near-duplicate of every tenth file, written as one JSONL shard.
- ours: `dedup.dedup(shard, out)`, end to end: read, exact hashes, MinHash signatures with
  `update_batch`, LSH, clusters, write the kept shard and the reports.
- baseline: the textbook datasketch loop on the same texts already in memory (no I/O, which can
  only flatter it): per file a `MinHash`, `update()` per word 5-gram, `MinHashLSH.insert`, then
  `query` per file and a Jaccard check.
- with --beam: the Beam form on the DirectRunner (pipeline start-up included).
Both find the same duplicates (the counts are printed). Best of --repeat runs each.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from cleaning_inputs import best_seconds, stdlib_corpus
from datasketch import MinHash, MinHashLSH

from data_pipeline import dedup, records
from data_pipeline.cleaning import clusters as clusters_lib
from data_pipeline.cleaning import minhash, shingles


def corpus(count: int) -> list[dict]:
    originals = stdlib_corpus(count)
    planted = [dict(r, id=f"copy/{r['id']}", text=r["text"].replace("    ", "  ") + "\n# copy\n")
               for r in originals[::10]]
    return originals + planted


def baseline_dropped(texts: list[str], config: minhash.MinHashConfig) -> int:
    """How many records the baseline's pairs remove under the same clustering (one kept per
    connected cluster)."""
    lsh = MinHashLSH(threshold=config.threshold, num_perm=config.num_perm)
    signatures = []
    for i, text in enumerate(texts):
        m = MinHash(num_perm=config.num_perm, seed=minhash.SEED)
        for shingle in shingles.word_shingles(text, config.shingle_words):
            m.update(shingle)
        lsh.insert(i, m)
        signatures.append(m)
    pairs = []
    for i, m in enumerate(signatures):
        for j in lsh.query(m):
            if j > i and m.jaccard(signatures[j]) >= config.threshold:
                pairs.append((i, j))
    members = [clusters_lib.Member(f"{i:09d}", str(i), len(t)) for i, t in enumerate(texts)]
    found = clusters_lib.build_clusters([[m] for m in members],
                                        [(members[i], members[j]) for i, j in pairs],
                                        lambda a, b: 1.0)
    return sum(len(c.dropped) for c in found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--beam", action="store_true")
    args = parser.parse_args()
    data = corpus(args.files)
    config = minhash.MinHashConfig()
    megabytes = sum(len(r["text"].encode()) for r in data) / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        shard = os.path.join(tmp, "in.jsonl")
        records.write_shard(shard, data)
        ours_s, report = best_seconds(lambda: dedup.dedup(shard, os.path.join(tmp, "out")),
                                      args.repeat)
        base_s, base_dropped = best_seconds(
            lambda: baseline_dropped([r["text"] for r in data], config), args.repeat)
        print(f"{len(data)} files, {megabytes:.1f} MB; threshold {config.threshold}, "
              f"{config.num_perm} permutations, {config.shingle_words}-word shingles")
        print(f"ours (dedup.dedup, end to end)    {len(data) / ours_s:8.1f} files/s")
        print(f"datasketch loop (in memory)       {len(data) / base_s:8.1f} files/s")
        print(f"ratio ours / baseline             {base_s / ours_s:8.2f}x")
        dropped = report["dropped"]["exact"] + report["dropped"]["near"]
        planted = sum(r["id"].startswith("copy/") for r in data)
        print(f"dropped by ours: {dropped}, by the baseline: {base_dropped} ({planted} planted "
              "copies; the rest are the standard library's own near-duplicates, e.g. the "
              "generated encodings/cp*.py codecs)")
        if args.beam:
            beam_s, _ = best_seconds(lambda: dedup.dedup(shard, os.path.join(tmp, "beam"),
                                                         beam_args=[]), 1)
            print(f"ours on Beam (DirectRunner)       {len(data) / beam_s:8.1f} files/s")


if __name__ == "__main__":
    main()
