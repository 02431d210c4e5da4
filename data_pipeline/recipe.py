"""`python -m data_pipeline.recipe --config=configs/data/phi1.py [--config.x=...] [--until STAGE]
[--only STAGE]`: the whole data half of DESIGN.md's flow as one resumable command.

It runs the stages of `data_pipeline.recipe_stages` in order (code_input, annotate, classify,
filter, dedup, decontaminate, textbook, exercises, cache), each by the existing stage command,
writing OUTPUT_ROOT/<stage>/ and, last, that directory's manifest (`data_pipeline.manifest`).
Rerunning the same command skips every stage whose manifest matches (same inputs, options and
code) and reruns the first that does not, and every stage after it that reads its outputs. A run
killed in any stage leaves that stage without a manifest; the next run starts it again from an
empty directory, so it ends with the outputs of an uninterrupted run.

Before any stage runs, the config is checked whole: the input paths exist, the endpoint answers,
benchmark files are HumanEval or MBPP problems, the stages and mixtures named exist. At the end it
prints the training commands on the outputs and writes OUTPUT_ROOT/data_card/DATA_CARD.md
(`data_pipeline.data_card`) when every stage ran or was up to date (not after --until/--only). Exit status: 0 done, 1 a stage failed, 2 a usage or config error,
3 an LLM budget stopped a stage (rerun with a higher budget to continue; answers are cached).
"""

from __future__ import annotations

import functools
import importlib
import shlex
import socket
import sys
import time
import urllib.parse
from typing import Any, Optional, Sequence

import ml_collections
import tensorflow as tf
from absl import app, flags
from ml_collections import config_flags

from data_pipeline import config_cli, manifest
from data_pipeline import recipe_stages as stages
from data_pipeline.recipe_config import SHIPPED
from data_pipeline.sources import MIXTURES
from data_pipeline.stdlib_source import INSTALLED_PYTHON

BUDGET_EXIT_CODE = 3
_OPENAI_API = "https://api.openai.com/v1"


class RecipeError(ValueError):
    """A config or input the recipe cannot run with, found before any stage runs."""


class StageFailed(RuntimeError):
    def __init__(self, stage: str, command: str, status: Any):
        super().__init__(f"stage {stage} failed (exit status {status}): {command}")
        self.status = status


def selected_stages(until: Optional[str], only: Optional[str]) -> list[str]:
    if until and only:
        raise RecipeError("--until and --only exclude each other")
    for name in (until, only):
        if name and name not in stages.STAGE_NAMES:
            raise RecipeError(f"unknown stage {name!r}; the stages are {', '.join(stages.STAGE_NAMES)}")
    if only:
        return [only]
    names = list(stages.STAGE_NAMES)
    return names[:names.index(until) + 1] if until else names


def _check_endpoint(base_url: str) -> None:
    url = urllib.parse.urlparse(base_url or _OPENAI_API)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise RecipeError(f"llm.base_url {base_url!r} is not an http(s) URL")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=10).close()
    except OSError as error:
        raise RecipeError(f"the LLM endpoint {base_url or _OPENAI_API} cannot be reached ({error}); "
                          "start it, fix llm.base_url, or set llm.model='' to use the shipped labels "
                          "and the embedded textbook and exercises") from None


def check_config(config: ml_collections.ConfigDict, selected: Sequence[str]) -> None:
    """Every problem that can be found without running a stage, each in one message."""
    from data_pipeline.cleaning import benchmarks
    from data_pipeline.curation import filter_inputs

    if not config.output_root:
        raise RecipeError("output_root is not set (--config.output_root=DIR or gs://BUCKET/DIR)")
    if not config.inputs.code:
        raise RecipeError(f"inputs.code is not set: The Stack's Parquet files or record shards, or "
                          f"{INSTALLED_PYTHON!r}")
    if config.inputs.code != INSTALLED_PYTHON:
        filter_inputs.expand_inputs(config.inputs.code, config.inputs.input_format)  # FileNotFoundError
    if stages.trains_classifier(config) and config.annotate.labels not in ("", SHIPPED):
        raise RecipeError(f"annotate.labels must be '' (ask llm.model) or {SHIPPED!r}, "
                          f"not {config.annotate.labels!r}")
    if stages.annotates_with_llm(config) and not stages.uses_llm(config):
        raise RecipeError("annotation needs an LLM: set llm.model (and llm.base_url), or "
                          f"annotate.labels={SHIPPED!r}, or classify.classifier={SHIPPED!r}")
    unknown = [m for m in stages.mixtures(config) if m not in MIXTURES]
    if unknown:
        raise RecipeError(f"cache.mixtures names unknown mixtures {unknown}; known: {sorted(MIXTURES)}")
    try:
        benchmarks.load_benchmarks([None] + stages.benchmark_paths(config))
    except ValueError as error:
        raise RecipeError(f"decontaminate.benchmarks: {error}") from None
    asking = {"textbook", "exercises"} | ({"annotate"} if stages.annotates_with_llm(config) else set())
    if stages.uses_llm(config) and asking & set(selected):
        _check_endpoint(config.llm.base_url)


def _upstream_digest(root: str, name: str) -> str:
    found = manifest.read_manifest(stages.stage_dir(root, name))
    if found is None:
        raise RecipeError(f"stage {name} has not finished under {root}; run it first (--until {name})")
    return found["digest"]


def _relative(line: str, root: str) -> str:
    """A command with OUTPUT_ROOT abstracted, so the key survives moving the root."""
    return line.replace(root.rstrip("/"), "{output_root}")


def plan_stage(stage: stages.Stage, config: ml_collections.ConfigDict, root: str, code: dict) -> dict:
    """The stage's commands, inputs and key as its manifest will record them."""
    inputs = {f"stage:{name}": _upstream_digest(root, name) for name in stage.after}
    inputs.update(stage.external_inputs(config))
    lines = [stages.command_line(c) for c in stage.commands(config, root)]
    key = manifest.stage_key(inputs, {"commands": [_relative(line, root) for line in lines]}, code)
    return {"stage": stage.name, "key": key, "inputs": inputs, "commands": lines, "code_version": code}


def _run_command(stage: str, module: str, argv: list[str]) -> None:
    line = stages.command_line((module, argv))
    print(f"  $ {line}", flush=True)
    try:
        status = importlib.import_module(module).main(argv)
    except SystemExit as exit_:
        status = exit_.code
    if status == BUDGET_EXIT_CODE and module in ("data_pipeline.annotate", "data_pipeline.synth"):
        raise StageFailed(stage, line, BUDGET_EXIT_CODE)
    if status not in (None, 0):
        raise StageFailed(stage, line, status)


def run_stage(stage: stages.Stage, config: ml_collections.ConfigDict, root: str, planned: dict) -> dict:
    """Runs the stage into an emptied directory, then writes its manifest (the commit)."""
    out = stages.stage_dir(root, stage.name)
    if tf.io.gfile.exists(out):
        tf.io.gfile.rmtree(out)  # an interrupted or outdated run's files
    tf.io.gfile.makedirs(out)
    started = time.time()
    for module, argv in stage.commands(config, root):
        _run_command(stage.name, module, argv)
    outputs = manifest.describe_outputs(out)
    record = dict(planned, outputs={"files": outputs["files"], "digest": outputs["digest"]},
                  counts=outputs["counts"],
                  digest=manifest.stage_key({"key": planned["key"]}, {"outputs": outputs["digest"]},
                                            planned["code_version"]),
                  options=config[stage.name].to_dict() if stage.name in config else {},
                  wall_seconds=round(time.time() - started, 1),
                  finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    manifest.write_manifest(out, record)
    return record


def run(config: ml_collections.ConfigDict, until: Optional[str] = None, only: Optional[str] = None) -> dict:
    """Runs the selected stages that are not up to date; returns {stage: "ran" | "up to date"}."""
    selected = selected_stages(until, only)
    check_config(config, selected)
    root = config.output_root
    code = manifest.code_version()
    outcome = {}
    for stage in stages.STAGES:
        if stage.name not in selected:
            continue
        planned = plan_stage(stage, config, root, code)
        done = manifest.read_manifest(stages.stage_dir(root, stage.name))
        if done is not None and done.get("key") == planned["key"]:
            print(f"[{stage.name}] up to date", flush=True)
            outcome[stage.name] = "up to date"
            continue
        print(f"[{stage.name}] running", flush=True)
        record = run_stage(stage, config, root, planned)
        print(f"[{stage.name}] done in {record['wall_seconds']} s", flush=True)
        outcome[stage.name] = "ran"
    return outcome


def training_commands(config: ml_collections.ConfigDict) -> list[str]:
    """The `phi1_jax.train` command lines that train on the recipe's outputs."""
    root = config.output_root
    sources = stages.training_sources(config, root)
    cache = ([f"--config.data.cache_dir={stages.stage_dir(root, 'cache')}"]
             if stages.mixtures(config) and manifest.read_manifest(stages.stage_dir(root, "cache")) else [])
    vocabulary = [f"--config.data.vocabulary={config.cache.vocabulary}"] if config.cache.vocabulary else []
    pretrain = (["python", "-m", "phi1_jax.train", f"--config={config.training.pretrain}",
                 "--config.data.mixture=code_textbook", f"--config.data.sources.stack={sources['stack']}",
                 f"--config.data.sources.textbook={sources['textbook']}",
                 "--config.data.mixture_rates.stackoverflow=0.0"] + vocabulary + cache)
    finetune = (["python", "-m", "phi1_jax.train", f"--config={config.training.finetune}",
                 "--config.data.mixture=code_exercises", f"--config.data.sources.exercises={sources['exercises']}"]
                + vocabulary + cache)
    return [shlex.join(pretrain), shlex.join(finetune)]


def main(argv: Sequence[str]) -> int:
    if len(argv) > 1:
        print(f"data_pipeline.recipe: error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    config = flags.FLAGS.config
    if config is None:
        print("data_pipeline.recipe: error: --config=configs/data/<name>.py is required", file=sys.stderr)
        return 2
    try:
        outcome = run(config, flags.FLAGS.until, flags.FLAGS.only)
    except (RecipeError, FileNotFoundError) as error:
        print(f"data_pipeline.recipe: error: {error}", file=sys.stderr)
        return 2
    except StageFailed as failure:
        print(f"data_pipeline.recipe: {failure}", file=sys.stderr)
        return BUDGET_EXIT_CODE if failure.status == BUDGET_EXIT_CODE else 1
    if not flags.FLAGS.until and not flags.FLAGS.only:
        from data_pipeline import data_card

        card = data_card.write(config, shlex.join(["python", "-m", "data_pipeline.recipe"] + sys.argv[1:]))
        print(f"data card: {card}")
        print("train on the outputs:\n  " + "\n  ".join(training_commands(config)))
    else:
        print("stages run: " + ", ".join(f"{k} ({v})" for k, v in outcome.items()))
    return 0


def _define_flags() -> None:
    """Defined when run as a command only: imported as a library (tests, other commands) the
    module must not claim --config, which `phi1_jax.train` defines in the same process."""
    config_flags.DEFINE_config_file("config", None, "a configs/data/*.py file", lock_config=True)
    flags.DEFINE_string("until", None, "run the stages up to and including this one")
    flags.DEFINE_string("only", None, "run only this stage (its inputs must be done)")


if __name__ == "__main__":
    _define_flags()
    app.run(lambda argv: sys.exit(main(argv)),
            flags_parser=functools.partial(config_cli.parse_flags, program="data_pipeline.recipe"))
