"""Scoring speed of the curation filter on this CPU, and the embedder against a plain
sentence-transformers `encode` loop over the same files, measured in the same run.

    python benchmarks/curation_speed.py [--files 120] [--classifier DIR] [--repeats 2]

Input: the first `--files` standard-library modules (real code, sorted by path), written as one
record shard.

1. End to end: `data_pipeline.filter.filter_records` on that shard (read, embed, classify, write
   kept shards, scores and report): files per second, the share of time spent embedding and the
   classifier's share of scoring time (target: under 10%).
2. Embedding: `Embedder.embed` over the files' texts against the plain loop a user would write to
   get the same pooled vectors with sentence-transformers alone: split each file into the same
   256-token windows (the first 1024 tokens), decode them to text, `model.encode(windows,
   batch_size=32)`, average per file. Both sides embed the same windows with the same model; the
   ratio is windows per second, ours over plain (aim: >= 1). The plain side's window splitting
   is not timed, which can only flatter it. Each side runs `--repeats` times, alternating, and
   the best time of each counts (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from data_pipeline import filter as filter_stage
from data_pipeline import records
from data_pipeline.curation.scoring import Scorer
from data_pipeline.embedder import MAX_TOKENS_PER_TEXT
from data_pipeline.stdlib_source import stdlib_files, stdlib_record


def plain_windows(model, texts: list[str]) -> tuple[list[str], list[int]]:
    """The texts of the windows `Embedder.embed` uses, and each window's file."""
    tokenizer = model.tokenizer
    encoded = tokenizer(texts, truncation=True, max_length=model.max_seq_length, return_overflowing_tokens=True)
    per_file: dict[int, int] = {}
    windows, owners = [], []
    for ids, owner in zip(encoded["input_ids"], encoded["overflow_to_sample_mapping"]):
        per_file[owner] = per_file.get(owner, 0) + 1
        if per_file[owner] <= MAX_TOKENS_PER_TEXT // model.max_seq_length:
            windows.append(tokenizer.decode(ids, skip_special_tokens=True))
            owners.append(owner)
    return windows, owners


def plain_encode_loop(model, windows: list[str], owners: list[int], n_files: int) -> np.ndarray:
    vectors = model.encode(windows, batch_size=32, normalize_embeddings=True)
    pooled = np.zeros((n_files, vectors.shape[1]), np.float32)
    np.add.at(pooled, owners, vectors)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=120)
    parser.add_argument("--classifier", default=None, help="default: the shipped classifier")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    texts_records = [stdlib_record(p) for p in stdlib_files()[:args.files]]
    texts = [r["text"] for r in texts_records]
    with tempfile.TemporaryDirectory() as tmp:
        shard = os.path.join(tmp, "stdlib.jsonl")
        records.write_shard(shard, texts_records)
        warm = Scorer(args.classifier)
        warm.score(texts[:4])  # model loading and warm-up are start-up, not throughput
        timed = Scorer(args.classifier)  # the same models (loaded once per process), fresh counters
        start = time.perf_counter()
        report = filter_stage.filter_records(shard, os.path.join(tmp, "out"), scorer=timed)
        end_to_end = time.perf_counter() - start
    scoring_seconds = timed.embed_seconds + timed.classify_seconds
    print(f"end to end: {report['scored']} files in {end_to_end:.1f} s = {report['scored'] / end_to_end:.2f} files/s; "
          f"kept {report['kept']} ({report['kept_fraction']:.1%})")
    print(f"  embedding {timed.embed_seconds:.1f} s = {timed.embed_seconds / end_to_end:.1%} of end to end; "
          f"classifier {timed.classify_seconds:.2f} s = {timed.classify_seconds / scoring_seconds:.2%} of scoring "
          f"({'under' if timed.classify_seconds < 0.1 * scoring_seconds else 'OVER'} the 10% target)")

    embedder = timed.embedder
    model = embedder._model
    windows, owners = plain_windows(model, texts)
    ours_best = plain_best = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        ours = embedder.embed(texts)
        ours_best = min(ours_best, time.perf_counter() - start)
        start = time.perf_counter()
        plain = plain_encode_loop(model, windows, owners, len(texts))
        plain_best = min(plain_best, time.perf_counter() - start)
    agreement = float(np.mean(np.sum(ours * plain, axis=1)))
    print(f"embedding {len(texts)} files = {len(windows)} windows of <= {model.max_seq_length} tokens:")
    print(f"  ours  {len(windows) / ours_best:7.1f} windows/s ({len(texts) / ours_best:.2f} files/s)")
    print(f"  plain {len(windows) / plain_best:7.1f} windows/s (sentence-transformers encode loop)")
    print(f"  ratio ours/plain = {plain_best / ours_best:.2f}x; mean cosine between the two = {agreement:.4f}")


if __name__ == "__main__":
    main()
