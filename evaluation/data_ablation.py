"""The paper's data ablation at CPU scale (phi-1, arXiv 2306.11644, sec. 2.1 and Figure 2.1): the
same model, steps and seeds trained on three data arms, then compared on held-out code; with
`--finetune`, also the paper's second claim, finetuning on exercises (`evaluation.finetune_effect`).

    python -m evaluation.data_ablation --out workdir/ablation [--steps 300] [--max-files 600]
        [--seeds 3] [--pools 2] [--finetune [--finetune-steps 100]]

It runs the whole data half of DESIGN.md's flow on real files that every machine has, then the
training and evaluation half, once per arm, seed and pool:

1. pools: `--pools` disjoint pools of `--max-files` Python files each (the cap is per pool) of the
   standard library and the installed packages (The Stack's stand-in), a file's pool chosen by a
   hash of its path, as record shards;
2. per pool, `curate`: dedup the pool (`data_pipeline.dedup`), then decontaminate it and the
   embedded textbook against HumanEval (`data_pipeline.decontaminate`: substring, 13-gram and AST
   matching), then filter it with the shipped educational-value classifier (`data_pipeline.filter`);
3. per seed, pool and arm: train `configs/tiny.py` for the same steps, batch and sequence length,
   with that seed: `unfiltered` (the pool), `filtered` (the kept files), `filtered_textbook` (the
   kept files and the embedded textbook, mixed by tokens as `code_textbook` does);
4. per run: loss on HumanEval's canonical solutions given their prompts, loss on the embedded
   exercises' solutions given their prompts (no arm trains on exercises), greedy pass@1 on
   HumanEval in the sandbox, tokens trained on, wall time;
5. per arm the mean and standard deviation over its runs, and between arms the differences paired
   on seed and pool (`evaluation.ablation_report`);
6. with `--finetune`: the best arm's checkpoints finetuned on exercises of some families and
   evaluated on the others (`evaluation.exercise_split`, `evaluation.finetune_effect`).

Writes `OUT/report.json`, `OUT/report.md` (the tables) and `OUT/ablation.png`, rewritten after every
run. A curated pool (`OUT/data/pool<p>`) and a finished run (`OUT/runs/<arm>-seed<s>-pool<p>`)
leave a `result.json` that a later call reads back instead of redoing them, and an unfinished run's
training resumes from its checkpoint, so an interrupted grid continues with the same command, and
one with more seeds adds only the new runs (other settings need a new OUT). The pod-scale arms are
`configs/ablation_350m.py:<arm>`.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import time
from typing import Any, Sequence

ARMS = ("unfiltered", "filtered", "filtered_textbook")
# The embedding method embeds every function of every file: minutes per hundred files on a CPU.
# Substring, 13-gram and AST matching catch verbatim and disguised HumanEval solutions alike.
CONTAMINATION_METHODS = ("substring", "ngram", "ast")


def pool_files(max_files: int, pools: int = 1) -> list[list[tuple[str, str]]]:
    """`pools` disjoint pools of `max_files` (record id, path) each of the `installed-python`
    stand-in for The Stack (`data_pipeline.stdlib_source.installed_python_pools`: a file's pool is
    crc32 of its id modulo `pools`, and each pool takes its first `max_files` files in the order of
    that hash, so one pool is the single-pool run's choice). The cap is per pool, so every pool is
    a replicate of the same size; ValueError when the files do not fill every pool."""
    from data_pipeline.stdlib_source import installed_python_pools

    chosen = installed_python_pools(max_files, pools)
    if min(len(files) for files in chosen) < max_files:
        raise ValueError(f"{pools} pools of {max_files} files need {pools * max_files} files (Python files of at "
                         f"most 64 KB), and the smallest pool here would hold {min(len(files) for files in chosen)}: "
                         "lower --pools or --max-files")
    return chosen


def curate(pool_dir: str, textbook_path: str, out_dir: str) -> dict[str, str]:
    """The data half of the recipe, by the stages' own functions: dedup the pool, decontaminate it
    and the textbook against HumanEval, filter the pool with the shipped classifier. Returns the
    record-shard patterns of the arms' sources."""
    from data_pipeline.decontaminate import decontaminate
    from data_pipeline.dedup import dedup
    from data_pipeline.filter import filter_records

    stage = functools.partial(os.path.join, out_dir)
    decontaminate_cheaply = functools.partial(decontaminate, methods=CONTAMINATION_METHODS)
    # Stages write their reports beside their shards (dedup's clusters.jsonl, filter's
    # scores.jsonl), so the next stage reads the shards by name.
    dedup(pool_dir, stage("deduped"))
    decontaminate_cheaply(stage("deduped", "records-*"), stage("unfiltered"), stage("decontamination_pool.json"))
    decontaminate_cheaply(textbook_path, stage("textbook"), stage("decontamination_textbook.json"))
    filter_records(stage("unfiltered"), stage("filtered"))
    return {"unfiltered": stage("unfiltered"), "filtered": stage("filtered", "kept-*"),
            "textbook": stage("textbook")}


def arm_sources(arm: str, data_dirs: dict[str, str]) -> tuple[dict[str, str], dict[str, float]]:
    """(data.sources, data.mixture_rates) of the `code_textbook` mixture for one arm: the arms
    differ in these and nothing else."""
    if arm not in ARMS:
        raise ValueError(f"unknown arm {arm!r}; the arms are {ARMS}")
    stack = data_dirs["unfiltered"] if arm == "unfiltered" else data_dirs["filtered"]
    if arm == "filtered_textbook":
        return {"stack": stack, "textbook": data_dirs["textbook"]}, {"stackoverflow": 0.0}
    return {"stack": stack}, {"stackoverflow": 0.0, "textbook": 0.0}


def arm_config(base: Any, arm: str, data_dirs: dict[str, str], workdir: str) -> Any:
    """`base` (a training ConfigDict) trained on `arm`'s data, in `workdir`."""
    config = base.copy_and_resolve_references()
    sources, rates = arm_sources(arm, data_dirs)
    config.data.mixture = "code_textbook"
    for name, pattern in sources.items():
        config.data.sources[name] = pattern
    for name, rate in rates.items():
        config.data.mixture_rates[name] = rate
    config.workdir = workdir
    return config


def heldout_losses(checkpoint: str, data_config: Any, exercises_path: str) -> dict[str, Any]:
    """Loss on HumanEval's canonical solutions and on the embedded exercises' solutions, each given
    its prompt, tokenized with the training vocabulary."""
    from data_pipeline import records
    from data_pipeline.seqio_data import loader
    from evaluation.completion_loss import completion_loss, encode_pair
    from evaluation.problems import load_problems
    from phi1_jax.checkpoint import load_model

    config, params = load_model(checkpoint)
    encode = loader.vocabulary(data_config).encode
    humaneval = [encode_pair(encode, p.prompt, p.canonical_solution) for p in load_problems().values()]
    exercises = [encode_pair(encode, r["meta"]["prompt"], r["meta"]["solution"])
                 for r in records.read_records(exercises_path)]
    out = {}
    for name, pairs in (("humaneval_solution_loss", humaneval), ("exercises_solution_loss", exercises)):
        loss = completion_loss(config, params, pairs)
        out[name] = round(loss.nats_per_token, 4)
        out[name.replace("_loss", "_tokens")] = loss.tokens
    return out


def pass_at_1(checkpoint: str, results_path: str, max_new_tokens: int, limit: int | None,
              problems: str | None = None, name: str = "humaneval") -> dict[str, Any]:
    """Greedy pass@1 on HumanEval, or on the HumanEval-format `problems` file (the first `limit`
    problems when given), scored in the sandbox by the evaluator's own command; the fields are
    `<name>_pass@1` and `<name>_problems`."""
    from evaluation import humaneval

    argv = ["--checkpoint", checkpoint, "--out", results_path,
            "--temperature", "0", "--n", "1", "--k", "1", "--max-new-tokens", str(max_new_tokens),
            "--no-progress"]
    if problems:
        argv += ["--problems", problems]
    if limit:
        argv += ["--limit", str(limit)]
    summary = humaneval.run(argv)
    return {f"{name}_pass@1": summary["pass@1"], f"{name}_problems": summary["problems"]}


def train_arm(config: Any) -> dict[str, Any]:
    """Trains one run to `train.steps` (an arm from scratch, or a finetuning from `train.init_from`);
    its tokens are steps x batch x sequence length, the same for every arm (packed batches have no
    padding but a document's last chunk). A run stopped early (preempted) raises RuntimeError."""
    from phi1_jax.train import train

    start = time.perf_counter()
    summary = train(config)
    if summary["step"] < config.train.steps:  # preempted: its checkpoint must not be evaluated as finished
        raise RuntimeError(f"{config.workdir} stopped at step {summary['step']} of {config.train.steps}; "
                           "the same command resumes it")
    # Each arm validates on its own mixture, so this loss does not compare arms; the held-out ones do.
    return {"steps": summary["step"], "own_validation_loss": round(summary["eval_loss"], 4),
            "tokens": summary["step"] * config.train.global_batch_size * config.train.seq_len,
            "train_seconds": round(time.perf_counter() - start, 1),
            "checkpoint": summary["workdir"]}


def run_arm(base: Any, arm: str, seed: int, pool: int, data_dirs: dict[str, str], out: str,
            args: argparse.Namespace) -> dict[str, Any]:
    """Trains and evaluates one arm with one seed on one pool, in `OUT/runs/<arm>-seed<s>-pool<p>`."""
    from data_pipeline.seqio_data.tasks import EMBEDDED_SOURCES

    workdir = os.path.join(out, "runs", f"{arm}-seed{seed}-pool{pool}")
    done = finished(workdir)
    if done is not None:
        return done
    config = arm_config(base, arm, data_dirs, workdir)
    config.train.seed = seed
    result = {"arm": arm, "seed": seed, "pool": pool, "sources": {k: v for k, v in config.data.sources.items() if v},
              "mixture_rates": {k: v for k, v in config.data.mixture_rates.items() if v is not None},
              **train_arm(config)}
    eval_start = time.perf_counter()
    result.update(heldout_losses(workdir, config.data, EMBEDDED_SOURCES["exercises"]))
    result.update(pass_at_1(workdir, os.path.join(workdir, "humaneval_results.jsonl"), args.max_new_tokens,
                            args.humaneval_limit))
    result["eval_seconds"] = round(time.perf_counter() - eval_start, 1)
    return keep(workdir, result)


def finished(workdir: str) -> dict[str, Any] | None:
    """The result a finished run or a curated pool left in its directory (`keep`), so a resumed
    grid does not redo it; None when it has not finished."""
    path = os.path.join(workdir, "result.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def keep(workdir: str, result: dict[str, Any]) -> dict[str, Any]:
    """Writes `result` where `finished` finds it, and returns it."""
    with open(os.path.join(workdir, "result.json"), "w") as f:
        json.dump(result, f, indent=2)
    return result


def write_report(report: dict[str, Any], out: str) -> None:
    """report.json, report.md and ablation.png; called after every run, so an interrupted grid
    leaves the runs it finished summarized."""
    from evaluation import ablation_report

    with open(os.path.join(out, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(ablation_report.table_lines(report)) + "\n")
    ablation_report.plot(report, os.path.join(out, "ablation.png"))


def run(args: argparse.Namespace) -> dict[str, Any]:
    from data_pipeline import records
    from data_pipeline.stdlib_source import installed_python_records
    from data_pipeline.seqio_data.tasks import EMBEDDED_SOURCES
    from evaluation import ablation_report, exercise_split, finetune_effect
    from phi1_jax.default_config import load_config_file

    started = time.perf_counter()
    # Configs and the pools before minutes of data work, so a bad path or too many pools fail at once.
    base = load_config_file(args.config)
    finetune_base = load_config_file(args.finetune_config) if args.finetune else None
    pools = pool_files(args.max_files, args.pools)
    os.makedirs(args.out, exist_ok=True)
    seeds = [args.seed + i for i in range(args.seeds)]
    base.train.steps = args.steps
    base.checkpoint.every_steps = args.steps
    base.checkpoint.keep = 1
    pool_data = []
    for pool, files in enumerate(pools):
        pool_dir = os.path.join(args.out, "data", f"pool{pool}")
        curated = finished(pool_dir)
        if curated is None:
            records.write_shards(os.path.join(pool_dir, "pool"), list(installed_python_records(files)), num_shards=4)
            curated = keep(pool_dir, {"pool": pool, "files": len(files), "data": curate(
                os.path.join(pool_dir, "pool"), EMBEDDED_SOURCES["textbook"], pool_dir)})
        pool_data.append(curated)
    report = {"command": " ".join([os.path.basename(sys.executable), "-m", "evaluation.data_ablation"] + sys.argv[1:]),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
              "config": args.config, "steps": args.steps, "seed": args.seed, "seeds": seeds, "pools": args.pools,
              "max_files_per_pool": args.max_files, "pool_data": pool_data,
              "data": pool_data[0]["data"],  # the first pool's: the single-pool run's field
              "runs": [], "wall_seconds_by_part": {"data": round(time.perf_counter() - started, 1)}}

    def summarize(parts: dict[str, float]) -> None:
        report["arms"] = ablation_report.arm_summaries(report["runs"], args.arms)
        report["differences"] = ablation_report.differences(report["runs"], args.arms)
        report["wall_seconds_by_part"].update({k: round(v, 1) for k, v in parts.items()})
        report["wall_seconds"] = round(time.perf_counter() - started, 1)
        write_report(report, args.out)

    # Seed-major, so a grid stopped early has whole seeds over every pool and arm to pair.
    for seed in seeds:
        for pool in range(args.pools):
            for arm in args.arms:
                report["runs"].append(run_arm(base, arm, seed, pool, pool_data[pool]["data"], args.out, args))
                summarize({part: sum(r[f"{part}_seconds"] for r in report["runs"]) for part in ("train", "eval")})
    if finetune_base is not None:
        split_start = time.perf_counter()
        split = exercise_split.split_exercises(EMBEDDED_SOURCES["exercises"], os.path.join(args.out, "data", "exercises"))
        report["wall_seconds_by_part"]["exercise_split"] = round(time.perf_counter() - split_start, 1)
        arm = finetune_effect.best_arm(report["arms"])
        runs = finetune_effect.finetune_runs(finetune_base, [r for r in report["runs"] if r["arm"] == arm], split,
                                             args.out, args.finetune_steps or finetune_base.train.steps,
                                             args.max_new_tokens, args.heldout_limit)
        report["finetune"] = {"arm": arm, "chosen_by": "lowest mean humaneval_solution_loss",
                              "config": args.finetune_config, "split": split, "runs": runs,
                              "summary": finetune_effect.summarize(runs)}
        summarize({f"finetune_{part}": sum(r[f"{part}_seconds"] for r in runs) for part in ("train", "eval")})
    return report


def _arms(value: str) -> list[str]:
    arms = [a for a in value.split(",") if a]
    unknown = sorted(set(arms) - set(ARMS))
    if unknown or not arms:
        raise argparse.ArgumentTypeError(f"unknown arms {unknown}; choose from {','.join(ARMS)}")
    return arms


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def _parser() -> argparse.ArgumentParser:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory for the data, the workdirs and the report")
    parser.add_argument("--config", default=os.path.join(here, "configs", "tiny.py"), help="the model and optimizer of every arm")
    parser.add_argument("--steps", type=_positive, default=300, help="training steps per arm (equal tokens)")
    parser.add_argument("--seed", type=int, default=0, help="the first seed")
    parser.add_argument("--seeds", type=_positive, default=1, help="seeds per arm and pool: --seed, --seed + 1, ...")
    parser.add_argument("--pools", type=_positive, default=1, help="disjoint pools of files (by a hash of the path)")
    parser.add_argument("--max-files", type=_positive, default=600, help="Python files in each pool")
    parser.add_argument("--arms", type=_arms, default=list(ARMS),
                        help=f"comma-separated subset of {','.join(ARMS)}")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="for the pass@1 samples")
    parser.add_argument("--humaneval-limit", type=int, default=None, help="only the first N problems for pass@1")
    parser.add_argument("--finetune", action="store_true",
                        help="then finetune the best arm's checkpoints on exercises split by family")
    parser.add_argument("--finetune-config", default=os.path.join(here, "configs", "tiny_finetune.py"))
    parser.add_argument("--finetune-steps", type=_positive, default=None, help="default: the finetune config's")
    parser.add_argument("--heldout-limit", type=int, default=None,
                        help="only the first N held-out exercises for pass@1")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        report = run(args)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    with open(os.path.join(args.out, "report.md")) as f:
        print(f.read())
    print(f"wall time {report['wall_seconds']:.0f} s; report.json, report.md and ablation.png in {args.out}")


if __name__ == "__main__":
    main()
