"""The paper's second claim at CPU scale (phi-1, arXiv 2306.11644, sec. 3): finetuning on exercises
helps beyond them. The finetuning half of `python -m evaluation.data_ablation --finetune`, after
its arms have trained (DESIGN.md data flow: `code_exercises` mixture -> jit train step from
`train.init_from` -> checkpoints -> sandbox -> pass@k).

Every checkpoint of the best arm (one per seed and pool) is finetuned with `configs/tiny_finetune.py`
on the finetuning side of the exercises split by family (`evaluation.exercise_split`), each with the
seed of its pretraining run and the same steps (so the same tokens). Before and after, on the same
checkpoints' held-out side: the loss on the held-out exercises' solutions, the loss on HumanEval's
solutions, and greedy pass@1 on the held-out exercises in the sandbox, with the evaluation code of
the arms (`data_ablation.heldout_losses`, `data_ablation.pass_at_1`). The finetuning workdirs are
`OUT/finetune/<arm>-seed<s>-pool<p>`; an interrupted run resumes from their checkpoints and
results (`data_ablation.finished`).
"""

from __future__ import annotations

import os
import time
from typing import Any, Sequence

from evaluation import ablation_report

METRICS = ("heldout_exercises_solution_loss", "humaneval_solution_loss", "heldout_pass@1")


def best_arm(arms: Sequence[dict]) -> str:
    """The arm with the lowest mean HumanEval solution loss (pass@1 is 0 for every arm at this size)."""
    return min(arms, key=lambda a: a["humaneval_solution_loss"])["arm"]


def evaluate(checkpoint: str, data_config: Any, split: dict[str, Any], results_path: str,
             max_new_tokens: int, limit: int | None) -> dict[str, Any]:
    """The three before/after numbers of one checkpoint."""
    from evaluation.data_ablation import heldout_losses, pass_at_1

    losses = heldout_losses(checkpoint, data_config, split["heldout"])
    return {"heldout_exercises_solution_loss": losses["exercises_solution_loss"],
            "humaneval_solution_loss": losses["humaneval_solution_loss"],
            **pass_at_1(checkpoint, results_path, max_new_tokens, limit, problems=split["heldout_problems"],
                        name="heldout")}


def finetune_runs(base: Any, runs: Sequence[dict], split: dict[str, Any], out: str, steps: int,
                  max_new_tokens: int, limit: int | None) -> list[dict]:
    """Finetunes every run's checkpoint with `base` (a finetuning ConfigDict) for `steps` steps and
    evaluates it before and after."""
    from evaluation.data_ablation import finished, keep, train_arm

    results = []
    for run in runs:
        name = f"{run['arm']}-seed{run['seed']}-pool{run['pool']}"
        workdir = os.path.join(out, "finetune", name)
        done = finished(workdir)
        if done is not None:
            results.append(done)
            continue
        config = base.copy_and_resolve_references()
        config.train.update(dict(steps=steps, seed=run["seed"], init_from=run["checkpoint"], eval_every=steps))
        config.checkpoint.update(dict(every_steps=steps, keep=1))
        config.data.sources.exercises = split["finetune"]
        config.workdir = workdir
        start = time.perf_counter()
        before = evaluate(run["checkpoint"], config.data, split, os.path.join(workdir, "before_results.jsonl"),
                          max_new_tokens, limit)
        trained = train_arm(config)
        after = evaluate(workdir, config.data, split, os.path.join(workdir, "after_results.jsonl"),
                         max_new_tokens, limit)
        results.append(keep(workdir, {"seed": run["seed"], "pool": run["pool"], "init_from": run["checkpoint"],
                        "checkpoint": workdir, "steps": trained["steps"], "tokens": trained["tokens"],
                        "train_seconds": trained["train_seconds"],
                        "eval_seconds": round(time.perf_counter() - start - trained["train_seconds"], 1),
                        "before": before, "after": after}))
    return results


def summarize(runs: Sequence[dict]) -> dict[str, dict]:
    """Per metric: before and after (mean, std) and the paired difference after - before."""
    return {metric: {"before": ablation_report.spread([r["before"][metric] for r in runs]),
                     "after": ablation_report.spread([r["after"][metric] for r in runs]),
                     "difference": ablation_report.paired([r["after"][metric] - r["before"][metric] for r in runs])}
            for metric in METRICS}
