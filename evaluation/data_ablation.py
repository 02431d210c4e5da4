"""The paper's data ablation at CPU scale (phi-1, arXiv 2306.11644, sec. 2.1 and Figure 2.1): the
same model, steps and seed trained on three data arms, then compared on held-out code.

    python -m evaluation.data_ablation --out workdir/ablation [--steps 300] [--max-files 1200]

It runs the whole data half of DESIGN.md's flow on real files that every machine has, then the
training and evaluation half, once per arm:

1. pool: up to `--max-files` Python files of the standard library and the installed packages
   (The Stack's stand-in), as record shards;
2. decontaminate the pool and the embedded textbook against HumanEval (`data_pipeline.decontaminate`);
3. filter the decontaminated pool with the shipped educational-value classifier
   (`data_pipeline.filter`);
4. train `configs/tiny.py` on each arm for the same steps, batch, sequence length and seed:
   `unfiltered` (the pool), `filtered` (the kept files), `filtered_textbook` (the kept files and
   the embedded textbook, mixed by tokens as `code_textbook` does);
5. per arm: loss on HumanEval's canonical solutions given their prompts, loss on the embedded
   exercises' solutions given their prompts (no arm trains on exercises), greedy pass@1 on
   HumanEval in the sandbox, tokens trained on, wall time.

Writes `OUT/report.json`, `OUT/report.md` (the table) and `OUT/ablation.png`. The pod-scale arms
are `configs/ablation_350m.py:<arm>`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import zlib
from typing import Any, Iterator, Sequence

ARMS = ("unfiltered", "filtered", "filtered_textbook")
_MAX_FILE_BYTES = 64 << 10  # The Stack's files are mostly small; a few huge generated ones would dominate


def pool_files(max_files: int) -> list[tuple[str, str]]:
    """(record id, path) of up to `max_files` Python files of the standard library and the
    installed packages, chosen by a hash of the id so the choice is the same on every run."""
    import sysconfig

    from data_pipeline.stdlib_source import stdlib_dir, stdlib_files

    found = [(f"stdlib/{rel}", os.path.join(stdlib_dir(), rel)) for rel in stdlib_files()]
    purelib = sysconfig.get_paths()["purelib"]
    for dirpath, dirnames, filenames in os.walk(purelib):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        found.extend((f"site-packages/{os.path.relpath(os.path.join(dirpath, n), purelib)}",
                      os.path.join(dirpath, n)) for n in sorted(filenames) if n.endswith(".py"))
    sized = [(i, p) for i, p in found if 0 < os.path.getsize(p) <= _MAX_FILE_BYTES]
    sized.sort(key=lambda item: (zlib.crc32(item[0].encode()), item[0]))
    return sorted(sized[:max_files])


def pool_records(files: Sequence[tuple[str, str]]) -> Iterator[dict]:
    from data_pipeline.stdlib_source import read_python_source

    for record_id, path in files:
        yield {"id": record_id, "text": read_python_source(path), "source": "stack",
               "meta": {"path": record_id.split("/", 1)[1]}}
