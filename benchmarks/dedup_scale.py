"""How the cleaning stages scale (issue 27): wall time and peak RSS of `data_pipeline.dedup` and
`data_pipeline.decontaminate` per input size, the factor per 10x of input, one pathological band
bucket of near-copies against as many distinct records, and how often linking each bucket to its
leader keeps or drops other records than comparing every pair would.

    python benchmarks/dedup_scale.py [--sizes 10000,100000] [--bucket 10000]
        [--decontaminate 100000] [--beam 10000] [--disagreement]

Inputs are records of a few KB cut from this interpreter's standard library (every .py file,
tests included): a seeded window of 40-120 lines of a random file, with seeded edits (one
identifier renamed throughout, one line dropped, one comment added), written as shards of 10,000
records. The pathological input is `--bucket` near-copies of one such window, each with its own
small edits, so they share their LSH bands and fall into the same buckets.

Each run is its own process, so its peak RSS (VmHWM, imports included: they alone are 0.76 GB,
TensorFlow most of it) is its own. The single process is one worker; with `--beam SIZES` the
dedup also runs at those sizes on the DirectRunner with `--direct_running_mode=multi_processing
--direct_num_workers=2`: "workers GB" is the largest peak of its worker processes, "peak RSS"
that of the controller process, which holds the shuffled data on this runner (Dataflow's shuffle
service does not live in a worker).
`--disagreement` compares the kept set with the one all-pairs comparison of every bucket gives.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from data_pipeline import records, stdlib_source  # noqa: E402
from data_pipeline.cleaning import band_buckets, minhash  # noqa: E402
from data_pipeline.cleaning import clusters as clusters_lib  # noqa: E402

SHARD_RECORDS = 10_000
_IDENTIFIER = re.compile(r"\b[a-z_][a-z0-9_]{3,}\b")


def _sources() -> list[list[str]]:
    files = [stdlib_source.read_python_source(os.path.join(stdlib_source.stdlib_dir(), f))
             for f in stdlib_source.stdlib_files()]
    return [text.splitlines() for text in files if text.count("\n") >= 60]


def _edited(lines: list[str], rng: random.Random, tag: str) -> str:
    """Seeded edits: one identifier renamed throughout, one line dropped, one comment added."""
    lines = list(lines)
    del lines[rng.randrange(len(lines))]
    lines.insert(rng.randrange(len(lines)), f"# {tag}")
    text = "\n".join(lines) + "\n"
    names = sorted(set(_IDENTIFIER.findall(text)))
    if names:
        name = rng.choice(names)
        text = re.sub(rf"\b{name}\b", f"{name}_{rng.randrange(10**6)}", text)
    return text


def distinct_records(count: int, seed: int, sources: list[list[str]]) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        lines = rng.choice(sources)
        length = rng.randint(40, 120)
        start = rng.randrange(max(1, len(lines) - length))
        out.append({"id": f"s{seed}/{i:07d}", "text": _edited(lines[start:start + length], rng,
                                                             f"record {i}"),
                    "source": "stack", "meta": {}})
    return out


def bucket_records(count: int, seed: int, sources: list[list[str]]) -> list[dict]:
    """`count` near-copies of one window: each drops one line and adds one comment."""
    rng = random.Random(seed)
    lines = max(sources, key=len)[:100]
    out = []
    for i in range(count):
        copy = list(lines)
        del copy[rng.randrange(len(copy))]
        copy.insert(rng.randrange(len(copy)), f"# copy {i}")
        out.append({"id": f"copy/{i:07d}", "text": "\n".join(copy) + "\n", "source": "stack",
                    "meta": {}})
    return out


def _write(directory: str, data: list[dict]) -> None:
    records.write_shards(directory, data, num_shards=max(1, len(data) // SHARD_RECORDS))


def _run_child(stage: str, input_dir: str, out_dir: str, beam: bool) -> dict:
    """Runs one stage in a fresh process and returns its wall time and peak RSS."""
    done = subprocess.run([sys.executable, __file__, "--child", stage, input_dir, out_dir]
                          + (["--child-beam"] if beam else []),
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _peak_gb(pid: int) -> float:
    """The process's peak resident set (VmHWM). Not ru_maxrss: Linux carries that over fork and
    exec, so a child would report its parent's peak."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def _watch_workers(peaks: dict, stop: threading.Event) -> None:
    """Samples the peak RSS of every descendant process (the Beam workers) until `stop`."""
    import psutil

    me = psutil.Process()
    while not stop.wait(0.5):
        for child in me.children(recursive=True):
            peaks[child.pid] = max(peaks.get(child.pid, 0.0), _peak_gb(child.pid))


def _child(stage: str, input_dir: str, out_dir: str, beam: bool) -> None:
    from data_pipeline import decontaminate, dedup

    peaks: dict = {}
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_workers, args=(peaks, stop), daemon=True)
    watcher.start()
    start = time.perf_counter()
    if stage == "dedup":
        args = (["--runner=DirectRunner", "--direct_running_mode=multi_processing",
                 "--direct_num_workers=2"] if beam else None)
        report = dedup.dedup(input_dir, out_dir, beam_args=args)
        summary = {"kept": report["kept"], "dropped": report["dropped"]}
    else:
        report = decontaminate.decontaminate(input_dir, out_dir, f"{out_dir}/report.json",
                                             methods=("substring", "ngram", "ast"))
        summary = {"kept": report["kept"], "dropped": report["dropped"]}
    seconds = time.perf_counter() - start
    stop.set()
    watcher.join()
    print(json.dumps({"seconds": seconds, "rss_gb": _peak_gb(os.getpid()),
                      "worker_rss_gb": max(peaks.values(), default=0.0), **summary}))


def kept_ids(data: list[dict], all_pairs: bool) -> set[str]:
    """The single process's kept set, with each band bucket linked to its leaders or, for
    `all_pairs`, every pair of a bucket compared (today's rule before issue 27)."""
    config = minhash.MinHashConfig()
    groups: dict[str, list[clusters_lib.Member]] = {}
    values: dict[str, np.ndarray] = {}
    buckets: dict[tuple, list[str]] = {}
    for i, r in enumerate(data):
        digest = minhash.content_hash(r["text"])
        groups.setdefault(digest, []).append(clusters_lib.Member(f"{i:09d}", r["id"],
                                                                 len(r["text"])))
        if digest not in values:
            values[digest] = minhash.signature(r["text"], config).hashvalues
            for band in minhash.band_keys(values[digest], config):
                buckets.setdefault(band, []).append(digest)
    edges = set()
    compared: dict[frozenset, list] = {}
    for bucket in buckets.values():
        if len(bucket) < 2:
            continue
        if not all_pairs:
            edges.update(band_buckets.star_edges(((d, values[d]) for d in bucket),
                                                 config.threshold))
            continue
        key = frozenset(bucket)
        if key not in compared:  # the near-copies share most of their bands
            bucket = sorted(bucket)
            matrix = np.stack([values[d] for d in bucket])
            found = []
            for i in range(len(bucket) - 1):
                shares = (matrix[i + 1:] == matrix[i]).mean(axis=1)
                found += [(bucket[i], bucket[i + 1 + j])
                          for j in np.flatnonzero(shares >= config.threshold)]
            compared[key] = found
        edges.update(compared[key])
    first = {d: min(g, key=clusters_lib.keep_order) for d, g in groups.items()}
    found = clusters_lib.build_clusters(groups.values(),
                                        [(first[a], first[b]) for a, b in edges],
                                        lambda a, b: 1.0)
    dropped = {m.id for m in (d for c in found for d, _, _ in c.dropped)}
    return {r["id"] for r in data} - dropped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--bucket", type=int, default=10_000)
    parser.add_argument("--decontaminate", default="", help="sizes, e.g. 10000,100000")
    parser.add_argument("--beam", default="",
                        help="sizes at which the dedup also runs on Beam (2 processes)")
    parser.add_argument("--disagreement", action="store_true")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--child-beam", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child, args.child_beam)
        return
    beam_sizes = {int(s) for s in args.beam.split(",") if s}
    sources = _sources()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    print(f"{'stage':22s} {'input':28s} {'records':>9s} {'MB':>7s} {'seconds':>8s} "
          f"{'rec/s':>7s} {'peak RSS GB':>11s} {'workers GB':>10s}  kept")
    with tempfile.TemporaryDirectory() as tmp:
        inputs = [(f"real {n}", distinct_records(n, n, sources)) for n in sizes]
        if args.bucket:
            inputs.insert(1, (f"one bucket of {args.bucket} copies",
                              bucket_records(args.bucket, 7, sources)))
        timed = {}
        runs = [("dedup", name, data) for name, data in inputs]
        runs += [("decontaminate", f"real {n}", distinct_records(n, n, sources))
                 for n in (int(s) for s in args.decontaminate.split(",") if s)]
        for beam in ([False, True] if beam_sizes else [False]):
            for stage, name, data in runs:
                if beam and (stage != "dedup" or len(data) not in beam_sizes):
                    continue
                input_dir = os.path.join(tmp, f"{stage}-{len(data)}-{name.split()[0]}")
                if not os.path.exists(input_dir):
                    _write(input_dir, data)
                result = _run_child(stage, input_dir, f"{input_dir}-out-{beam}", beam)
                label = f"{stage}{' Beam 2 proc' if beam else ''}"
                timed[(label, name)] = result
                megabytes = sum(len(r["text"].encode()) for r in data) / 1e6
                workers = f"{result['worker_rss_gb']:10.2f}" if beam else f"{'-':>10s}"
                print(f"{label:22s} {name:28s} {len(data):9d} {megabytes:7.1f} "
                      f"{result['seconds']:8.1f} {len(data) / result['seconds']:7.0f} "
                      f"{result['rss_gb']:11.2f} {workers}  {result['kept']}", flush=True)
        for (label, name), result in timed.items():
            if not name.startswith("real"):
                continue
            size = int(name.split()[1])
            bigger = timed.get((label, f"real {size * 10}"))
            if bigger:
                print(f"{label}: x10 records ({size} -> {size * 10}) costs "
                      f"x{bigger['seconds'] / result['seconds']:.1f} time, "
                      f"x{bigger['rss_gb'] / result['rss_gb']:.1f} peak RSS")
        for label in {label for label, _ in timed}:
            bucket = timed.get((label, f"one bucket of {args.bucket} copies"))
            same = timed.get((label, f"real {args.bucket}"))
            if bucket and same:
                print(f"{label}: one bucket of {args.bucket} near-copies takes "
                      f"x{bucket['seconds'] / same['seconds']:.2f} the time of {args.bucket} "
                      "real records")
        if args.disagreement:
            for name, data in inputs:
                start = time.perf_counter()
                star, pairs = kept_ids(data, all_pairs=False), kept_ids(data, all_pairs=True)
                differ = len(star ^ pairs)
                print(f"disagreement on {name}: {differ} of {len(data)} records kept by one rule "
                      f"and not the other ({100 * differ / len(data):.3f}%); kept {len(star)} "
                      f"(leaders) vs {len(pairs)} (all pairs) "
                      f"[{time.perf_counter() - start:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
