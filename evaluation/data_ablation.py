"""The paper's data ablation at CPU scale (phi-1, arXiv 2306.11644, sec. 2.1 and Figure 2.1): the
same model, steps and seed trained on three data arms, then compared on held-out code.

    python -m evaluation.data_ablation --out workdir/ablation [--steps 300] [--max-files 600]

It runs the whole data half of DESIGN.md's flow on real files that every machine has, then the
training and evaluation half, once per arm:

1. pool: up to `--max-files` Python files of the standard library and the installed packages
   (The Stack's stand-in), as record shards;
2. dedup the pool (`data_pipeline.dedup`), then decontaminate it and the embedded textbook against
   HumanEval (`data_pipeline.decontaminate`: substring, 13-gram and AST matching);
3. filter the decontaminated pool with the shipped educational-value classifier
   (`data_pipeline.filter`);
4. train `configs/tiny.py` on each arm for the same steps, batch, sequence length and seed:
   `unfiltered` (the pool), `filtered` (the kept files), `filtered_textbook` (the kept files and
   the embedded textbook, mixed by tokens as `code_textbook` does);
5. per arm: loss on HumanEval's canonical solutions given their prompts, loss on the embedded
   exercises' solutions given their prompts (no arm trains on exercises), greedy pass@1 on
   HumanEval in the sandbox, tokens trained on, wall time.

Writes `OUT/report.json`, `OUT/report.md` (the table) and `OUT/ablation.png`. The data stages are
deterministic and rerun on every call; an arm's training resumes from its checkpoint in `OUT/<arm>`,
so an interrupted run continues with the same command (a run with other settings needs a new OUT).
The pod-scale arms are `configs/ablation_350m.py:<arm>`.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import time
import zlib
from typing import Any, Iterator, Sequence

ARMS = ("unfiltered", "filtered", "filtered_textbook")
# The embedding method embeds every function of every file: minutes per hundred files on a CPU.
# Substring, 13-gram and AST matching catch verbatim and disguised HumanEval solutions alike.
CONTAMINATION_METHODS = ("substring", "ngram", "ast")
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


def humaneval_pass_at_1(checkpoint: str, out_dir: str, max_new_tokens: int, limit: int | None) -> dict[str, Any]:
    """Greedy pass@1 on HumanEval (the first `limit` problems when given), scored in the sandbox
    by the evaluator's own command."""
    from evaluation import humaneval

    argv = ["--checkpoint", checkpoint, "--out", os.path.join(out_dir, "humaneval_results.jsonl"),
            "--temperature", "0", "--n", "1", "--k", "1", "--max-new-tokens", str(max_new_tokens),
            "--no-progress"]
    if limit:
        argv += ["--limit", str(limit)]
    summary = humaneval.run(argv)
    return {"humaneval_pass@1": summary["pass@1"], "humaneval_problems": summary["problems"]}


def train_arm(config: Any) -> dict[str, Any]:
    """Trains one arm from scratch; its tokens are steps x batch x sequence length, the same for
    every arm (packed batches have no padding but a document's last chunk)."""
    from phi1_jax.train import train

    start = time.perf_counter()
    summary = train(config)
    # Each arm validates on its own mixture, so this loss does not compare arms; the held-out ones do.
    return {"steps": summary["step"], "own_validation_loss": round(summary["eval_loss"], 4),
            "tokens": summary["step"] * config.train.global_batch_size * config.train.seq_len,
            "train_seconds": round(time.perf_counter() - start, 1),
            "checkpoint": summary["workdir"]}


def write_table(report: dict[str, Any], path: str) -> None:
    columns = ("arm", "humaneval_solution_loss", "exercises_solution_loss", "humaneval_pass@1", "tokens",
               "train_seconds", "eval_seconds")
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for arm in report["arms"]:
        lines.append("| " + " | ".join(str(arm[c]) for c in columns) + " |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def plot(report: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = report["arms"]
    names = [a["arm"] for a in arms]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
    for ax, key, title in zip(axes, ("humaneval_solution_loss", "exercises_solution_loss", "humaneval_pass@1"),
                              ("HumanEval solutions (nats/token)", "exercise solutions (nats/token)",
                               "HumanEval pass@1")):
        values = [a[key] for a in arms]
        ax.bar(names, values, color=["#d9822b", "#9bc48a", "#2f7d3b"])
        ax.set_ylim(0, max(values) * 1.15 or 1.0)  # pass@1 is often 0 for every arm at this size
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
    fig.suptitle(f"phi-1 data ablation at CPU scale: {arms[0]['tokens']:,} tokens per arm", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from data_pipeline import records
    from data_pipeline.seqio_data.tasks import EMBEDDED_SOURCES
    from phi1_jax.default_config import load_config_file

    started = time.perf_counter()
    base = load_config_file(args.config)  # before minutes of data work, so a bad path fails at once
    os.makedirs(args.out, exist_ok=True)
    pool_dir = os.path.join(args.out, "data", "pool")
    records.write_shards(pool_dir, list(pool_records(pool_files(args.max_files))), num_shards=4)
    data_dirs = curate(pool_dir, EMBEDDED_SOURCES["textbook"], os.path.join(args.out, "data"))
    base.train.steps = args.steps
    base.train.seed = args.seed
    base.checkpoint.every_steps = args.steps
    base.checkpoint.keep = 1
    arms = []
    for arm in args.arms:
        workdir = os.path.join(args.out, arm)
        config = arm_config(base, arm, data_dirs, workdir)
        result = {"arm": arm, "sources": {k: v for k, v in config.data.sources.items() if v},
                  "mixture_rates": {k: v for k, v in config.data.mixture_rates.items() if v is not None},
                  **train_arm(config)}
        eval_start = time.perf_counter()
        result.update(heldout_losses(workdir, config.data, EMBEDDED_SOURCES["exercises"]))
        result.update(humaneval_pass_at_1(workdir, workdir, args.max_new_tokens, args.humaneval_limit))
        result["eval_seconds"] = round(time.perf_counter() - eval_start, 1)
        arms.append(result)
    report = {"command": " ".join([os.path.basename(sys.executable), "-m", "evaluation.data_ablation"] + sys.argv[1:]),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
              "config": args.config, "steps": args.steps, "seed": args.seed, "data": data_dirs,
              "arms": arms, "wall_seconds": round(time.perf_counter() - started, 1)}
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
    write_table(report, os.path.join(args.out, "report.md"))
    plot(report, os.path.join(args.out, "ablation.png"))
    return report


def _arms(value: str) -> list[str]:
    arms = [a for a in value.split(",") if a]
    unknown = sorted(set(arms) - set(ARMS))
    if unknown or not arms:
        raise argparse.ArgumentTypeError(f"unknown arms {unknown}; choose from {','.join(ARMS)}")
    return arms


def _parser() -> argparse.ArgumentParser:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory for the data, the three workdirs and the report")
    parser.add_argument("--config", default=os.path.join(here, "configs", "tiny.py"), help="the model and optimizer of every arm")
    parser.add_argument("--steps", type=int, default=300, help="training steps per arm (equal tokens)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-files", type=int, default=600, help="Python files in the unfiltered pool")
    parser.add_argument("--arms", type=_arms, default=list(ARMS),
                        help=f"comma-separated subset of {','.join(ARMS)}")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="for the pass@1 samples")
    parser.add_argument("--humaneval-limit", type=int, default=None, help="only the first N problems for pass@1")
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
