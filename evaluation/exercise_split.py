"""The embedded exercises split by family into a finetuning side and a held-out side, for the
finetuning half of the CPU-scale ablation (`evaluation.finetune_effect`; DESIGN.md data flow: the
`code_exercises` mixture on one side, "sandbox -> pass@k" on the other).

Exercises of one family vary one idea over parameters (`to_base_2` ... `to_base_16`), so a split by
exercise would put near-copies of every held-out exercise into finetuning. The split is by the
`family` field of the records' meta: families are ranked by a hash of their name and the first
ones are held out, so the split is the same on every machine and no family is on both sides. The
held-out side is then written as a HumanEval-format problem file (`task_id`, `prompt`,
`canonical_solution`, `test` defining `check(candidate)`, `entry_point`), which is what both the
evaluator (`evaluation.humaneval --problems`) and the decontamination stage (`--benchmark`) read;
the finetuning side is decontaminated against it and against HumanEval by the project's own stage,
so an exercise of another family that still copies a held-out one is dropped too.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import textwrap
from typing import Any, Sequence

HELDOUT_FRACTION = 0.3


def family_rank(family: str) -> str:
    """The family's place in the split order (sha256 rather than hash(), which is salted per process)."""
    return hashlib.sha256(family.encode("utf-8")).hexdigest()


def split_families(families: Sequence[str], heldout_fraction: float = HELDOUT_FRACTION) -> tuple[list[str], list[str]]:
    """(finetune families, held-out families): the first `heldout_fraction` of the distinct families
    by `family_rank` are held out, at least one on each side."""
    distinct = sorted(set(families), key=family_rank)
    if len(distinct) < 2:
        raise ValueError(f"a split by family needs at least two families, got {distinct}")
    held = min(max(1, round(len(distinct) * heldout_fraction)), len(distinct) - 1)
    return sorted(distinct[held:]), sorted(distinct[:held])


def heldout_problem(record: dict) -> dict:
    """An exercise record as a HumanEval-format problem: its asserts become the body of
    `check(candidate)`, which binds the entry point's name to the candidate first (the asserts call
    it by name)."""
    meta = record["meta"]
    body = "\n".join([f"{meta['entry_point']} = candidate", *meta["tests"]])
    return {"task_id": record["id"], "prompt": meta["prompt"], "canonical_solution": meta["solution"],
            "test": "def check(candidate):\n" + textwrap.indent(body, "    ") + "\n",
            "entry_point": meta["entry_point"]}


def split_exercises(exercises_path: str, out_dir: str, heldout_fraction: float = HELDOUT_FRACTION) -> dict[str, Any]:
    """Writes `out_dir/finetune` (record shards, decontaminated), `out_dir/heldout.jsonl` (record
    shard, for the held-out losses) and `out_dir/heldout_problems.jsonl` (HumanEval format, for
    pass@1). Returns the paths, the families on each side and the counts."""
    from data_pipeline import records
    from data_pipeline.decontaminate import decontaminate
    from evaluation.data_ablation import CONTAMINATION_METHODS

    exercises = list(records.read_records(exercises_path))
    finetune_families, heldout_families = split_families([r["meta"]["family"] for r in exercises], heldout_fraction)
    held = set(heldout_families)
    heldout = [r for r in exercises if r["meta"]["family"] in held]
    candidates = [r for r in exercises if r["meta"]["family"] not in held]
    os.makedirs(out_dir, exist_ok=True)
    path = functools.partial(os.path.join, out_dir)
    records.write_shard(path("heldout.jsonl"), heldout)
    records.write_shard(path("finetune_candidates.jsonl"), candidates)
    with open(path("heldout_problems.jsonl"), "w") as f:
        f.writelines(json.dumps(heldout_problem(r)) + "\n" for r in heldout)
    # None is HumanEval: the finetuned model is scored on HumanEval's solutions too.
    report = decontaminate(path("finetune_candidates.jsonl"), path("finetune"), path("decontamination_finetune.json"),
                           benchmark_paths=(None, path("heldout_problems.jsonl")), methods=CONTAMINATION_METHODS)
    return {"finetune": path("finetune"), "heldout": path("heldout.jsonl"),
            "heldout_problems": path("heldout_problems.jsonl"),
            "finetune_families": finetune_families, "heldout_families": heldout_families,
            "finetune_exercises": report["kept"], "finetune_dropped_by_decontamination": report["dropped"],
            "heldout_exercises": len(heldout)}

