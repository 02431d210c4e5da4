"""The stages of the data recipe (`data_pipeline.recipe`), in order, each as the command lines of
the existing stage commands it runs: the recipe calls those commands' `main` in its own process,
and writes the same lines into the stage's manifest, so a stage's outputs are by construction what
running its own command gives.

    code_input -> annotate -> classify -> filter -> dedup -> decontaminate ─┐
    textbook (synth + dedup + decontaminate) ───────────────────────────────┤-> cache
    exercises (synth + sandbox + dedup + decontaminate) ────────────────────┘

Every stage writes only under OUTPUT_ROOT/<stage>/; `after` names the stages whose outputs it
reads, so a stage reruns when one of them did.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from typing import Any, Callable, Optional

import ml_collections

from data_pipeline import manifest
from data_pipeline.curation import labelled_files
from data_pipeline.embedded_data import EMBEDDED_DIR
from data_pipeline.recipe_config import SHIPPED
from data_pipeline.stdlib_source import INSTALLED_PYTHON, installed_python_files

Config = ml_collections.ConfigDict
# (module whose main() runs, its argv)
Command = tuple[str, list[str]]
EMBEDDED_TEXTBOOK = os.path.join(EMBEDDED_DIR, "textbook.jsonl")
EMBEDDED_EXERCISES = os.path.join(EMBEDDED_DIR, "exercises.jsonl")


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    after: tuple[str, ...]
    commands: Callable[[Config, str], list[Command]]
    # {name: digest} of what the stage reads from outside OUTPUT_ROOT
    external_inputs: Callable[[Config], dict[str, str]] = lambda config: {}


def stage_dir(root: str, name: str) -> str:
    return f"{root.rstrip('/')}/{name}"


def _optional(flag: str, value: Any) -> list[str]:
    return [] if value is None or value == "" else [flag, str(value)]


def benchmark_paths(config: Config) -> list[str]:
    return [p for p in (b.strip() for b in config.decontaminate.benchmarks.split(",")) if p]


def _beam(config: Config) -> list[str]:
    return shlex.split(config.beam_options)


def uses_llm(config: Config) -> bool:
    return bool(config.llm.model)


def trains_classifier(config: Config) -> bool:
    return config.classify.classifier != SHIPPED


def annotates_with_llm(config: Config) -> bool:
    return trains_classifier(config) and config.annotate.labels != SHIPPED


def _llm_args(config: Config, root: str, stage: str, budget: Optional[float]) -> list[str]:
    llm = config.llm
    cache = f"{llm.cache_dir.rstrip('/')}/{stage}" if llm.cache_dir else stage_dir(root, f"llm_cache/{stage}")
    return (_optional("--base-url", llm.base_url) + ["--model", llm.model, "--cache-dir", cache,
            "--concurrency", str(llm.concurrency), "--timeout", str(llm.timeout),
            "--max-retries", str(llm.max_retries), "--prompt-price", str(llm.prompt_price),
            "--completion-price", str(llm.completion_price), "--no-progress"]
            + _optional("--requests-per-minute", llm.requests_per_minute)
            + _optional("--tokens-per-minute", llm.tokens_per_minute) + _optional("--budget-usd", budget))


def code_pattern(config: Config, root: str) -> str:
    """The code records every later stage reads: the stand-in's shards, or the configured input."""
    if config.inputs.code == INSTALLED_PYTHON:
        return f"{stage_dir(root, 'code_input')}/records-*"
    return config.inputs.code


def _code_input(config: Config, root: str) -> list[Command]:
    if config.inputs.code != INSTALLED_PYTHON:
        return []  # the filter reads the Parquet files or shards where they are
    inputs = config.inputs
    return [("data_pipeline.stdlib_source", ["--out", stage_dir(root, "code_input"), "--max-files",
                                             str(inputs.max_files), "--pools", str(inputs.pools),
                                             "--pool", str(inputs.pool)])]


def _code_input_fingerprint(config: Config) -> dict[str, str]:
    inputs = config.inputs
    if inputs.code == INSTALLED_PYTHON:
        files = installed_python_files(inputs.max_files, inputs.pools, inputs.pool)
        return {INSTALLED_PYTHON: manifest.stat_fingerprint(path for _, path in files)}
    from data_pipeline.curation import filter_inputs

    return {inputs.code: manifest.stat_fingerprint(p for p, _ in filter_inputs.expand_inputs(
        inputs.code, inputs.input_format))}


def _annotate(config: Config, root: str) -> list[Command]:
    out = stage_dir(root, "annotate")
    if not trains_classifier(config):
        return []
    if not annotates_with_llm(config):
        return [("data_pipeline.curation.labelled_files", ["--labels", labelled_files.LABELS_PATH, "--out", out])]
    a = config.annotate
    return [("data_pipeline.annotate", ["--input", code_pattern(config, root), "--out", f"{out}/labels.jsonl",
                                        "--sample-out", out, "--num", str(a.num), "--seed", str(a.seed),
                                        "--max-attempts", str(a.max_attempts), "--max-tokens", str(a.max_tokens)]
             + _llm_args(config, root, "annotate", a.budget_usd))]


def labels_path(config: Config, root: str) -> str:
    if config.annotate.labels == SHIPPED:
        return labelled_files.LABELS_PATH
    return f"{stage_dir(root, 'annotate')}/labels.jsonl"


def _classify(config: Config, root: str) -> list[Command]:
    if not trains_classifier(config):
        return []
    c = config.classify
    return [("data_pipeline.classify", ["train", "--labels", labels_path(config, root),
                                        "--input", f"{stage_dir(root, 'annotate')}/*-of-*.jsonl",
                                        "--out", stage_dir(root, "classify"),
                                        "--embedder", c.embedder, "--positive-min-score", str(c.positive_min_score),
                                        "--threshold", str(c.threshold), "--test-fraction", str(c.test_fraction),
                                        "--seed", str(c.seed), "--trees", str(c.trees)])]


def _filter(config: Config, root: str) -> list[Command]:
    f = config.filter
    classifier = ["--classifier", stage_dir(root, "classify")] if trains_classifier(config) else []
    return [("data_pipeline.filter", ["--input", code_pattern(config, root), "--out", stage_dir(root, "filter"),
                                      "--input-format", config.inputs.input_format, "--num-shards", str(f.num_shards),
                                      "--max-bytes", str(f.max_bytes)]
             + classifier + _optional("--threshold", f.threshold) + _beam(config))]


def _cleaning_beam(config: Config) -> list[str]:
    return ["--beam"] + _beam(config) if config.beam_options else []


def _dedup(config: Config, root: str) -> list[Command]:
    d = config.dedup
    return [("data_pipeline.dedup", ["--input", f"{stage_dir(root, 'filter')}/kept-*", "--out", stage_dir(root, "dedup"),
                                     "--threshold", str(d.threshold), "--num-perm", str(d.num_perm),
                                     "--shingle-words", str(d.shingle_words)] + _cleaning_beam(config))]


def _decontaminate_args(config: Config, input_pattern: str, out: str) -> list[str]:
    d = config.decontaminate
    benchmarks = [arg for path in benchmark_paths(config) for arg in ("--benchmark", path)]
    return (["--input", input_pattern, "--out", out, "--report", f"{out}/decontamination.json",
             "--methods", d.methods, "--embedder", d.embedder, "--min-chars", str(d.min_chars),
             "--ngram-threshold", str(d.ngram_threshold), "--tau", str(d.tau),
             "--ast-min-labels", str(d.ast_min_labels), "--embedding-threshold", str(d.embedding_threshold)]
            + benchmarks)


def _decontaminate(config: Config, root: str) -> list[Command]:
    args = _decontaminate_args(config, f"{stage_dir(root, 'dedup')}/records-*", stage_dir(root, "decontaminate"))
    return [("data_pipeline.decontaminate", args + _cleaning_beam(config))]


def _benchmark_digests(config: Config) -> dict[str, str]:
    return {path: manifest.file_digest(path) for path in benchmark_paths(config)}


def _synthesis(kind: str, embedded: str) -> Callable[[Config, str], list[Command]]:
    def commands(config: Config, root: str) -> list[Command]:
        out = stage_dir(root, kind)
        if not uses_llm(config):
            # No endpoint: the embedded set, decontaminated as a synthetic one would be.
            return [("data_pipeline.decontaminate", _decontaminate_args(config, embedded, out))]
        s = config[kind]
        args = ([kind, "--out", out, "--num", str(s.num), "--seed", str(s.seed), "--num-shards", str(s.num_shards),
                 "--temperature", str(s.temperature), "--decontamination-methods", config.decontaminate.methods]
                + _optional("--max-tokens", s.max_tokens)
                + [arg for path in benchmark_paths(config) for arg in ("--benchmark", path)])
        if kind == "exercises":
            args += ["--sandbox-timeout", str(s.sandbox_timeout)] + _optional("--sandbox-workers", s.sandbox_workers)
        return [("data_pipeline.synth", args + _llm_args(config, root, kind, s.budget_usd))]
    return commands


def synthetic_pattern(config: Config, root: str, kind: str) -> str:
    prefix = kind if uses_llm(config) else "records"
    return f"{stage_dir(root, kind)}/{prefix}-*-of-*.jsonl"


def training_sources(config: Config, root: str) -> dict[str, str]:
    """`data.sources` of the training configs: the recipe's outputs by source name."""
    return {"stack": f"{stage_dir(root, 'decontaminate')}/records-*",
            "textbook": synthetic_pattern(config, root, "textbook"),
            "exercises": synthetic_pattern(config, root, "exercises")}


def mixtures(config: Config) -> list[str]:
    return [m for m in (m.strip() for m in config.cache.mixtures.split(",")) if m]


def _cache(config: Config, root: str) -> list[Command]:
    sources = [f"{name}={pattern}" for name, pattern in training_sources(config, root).items()]
    runner = _beam(config) or ["--runner=DirectRunner"]
    return [("data_pipeline.seqio_data.cache", ["--mixture", mixture, "--out", stage_dir(root, "cache"),
                                     "--splits", config.cache.splits]
             + _optional("--vocabulary", config.cache.vocabulary)
             + [arg for source in sources for arg in ("--source", source)] + runner)
            for mixture in mixtures(config)]


def _vocabulary_digest(config: Config) -> dict[str, str]:
    vocabulary = config.cache.vocabulary
    return {vocabulary: manifest.stat_fingerprint([vocabulary])} if vocabulary else {}


STAGES: tuple[Stage, ...] = (
    Stage("code_input", (), _code_input, _code_input_fingerprint),
    Stage("annotate", ("code_input",), _annotate),
    Stage("classify", ("annotate",), _classify),
    Stage("filter", ("code_input", "classify"), _filter),
    Stage("dedup", ("filter",), _dedup),
    Stage("decontaminate", ("dedup",), _decontaminate, _benchmark_digests),
    Stage("textbook", (), _synthesis("textbook", EMBEDDED_TEXTBOOK), _benchmark_digests),
    Stage("exercises", (), _synthesis("exercises", EMBEDDED_EXERCISES), _benchmark_digests),
    Stage("cache", ("decontaminate", "textbook", "exercises"), _cache, _vocabulary_digest),
)
STAGE_NAMES = tuple(stage.name for stage in STAGES)


def command_line(command: Command) -> str:
    module, argv = command
    return shlex.join(["python", "-m", module] + list(argv))

