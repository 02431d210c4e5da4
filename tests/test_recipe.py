"""The data recipe as one command (data_pipeline.recipe): configs/data/local.py end to end on a
reduced input with annotation and synthesis against the local OpenAI-compatible server (faults
on), outputs equal to the stage commands' own, reruns that skip what is done, a SIGKILL in dedup,
bad input caught before any stage runs, and a short training run on the printed commands."""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from openai_server import OpenAIServer

from data_pipeline import data_card, embedded_data, manifest, recipe, records
from data_pipeline import recipe_stages as stages
from data_pipeline.curation import classifier as classifier_lib
from data_pipeline.seqio_data import tasks
from data_pipeline.synthesis import prompts
from phi1_jax.default_config import load_config_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCAL = os.path.join(REPO, "configs", "data", "local.py")
SECTIONS = [r["text"] for r in embedded_data.load_textbook()]
EXERCISES = [e for e in embedded_data.load_exercises() if e["family"] == "handwritten"]
NUM_SYNTH = 5
# Faults the client retries through (429 with backoff, 500, dropped connections, malformed JSON).
FAULTS = {1: "429", 4: "500", 7: "drop", 12: "malformed", 20: "429"}


def annotation_score(record_id: str) -> int:
    return 1 + zlib.crc32(record_id.encode()) % 5


class RecipeModel:
    """Plays the LLM for every stage: rubric scores for annotation, embedded textbook sections
    and embedded exercises (renamed as asked) for synthesis."""

    def __init__(self, seed: int = 0):
        self.synthetic = {}
        for kind in ("textbook", "exercises"):
            for index, p in enumerate(prompts.build_prompts(kind, seed, NUM_SYNTH)):
                self.synthetic[(p.messages[-1]["content"], p.params["seed"])] = (kind, index, p.choices)

    def __call__(self, body: dict) -> str:
        content = body["messages"][-1]["content"]
        annotated = re.search(r"File `([^`]+)`", content)
        if annotated:
            return json.dumps({"score": annotation_score(annotated.group(1)), "rationale": "test"})
        kind, index, choices = self.synthetic[(content, body["seed"])]
        if kind == "textbook":
            return SECTIONS[index]
        exercise = EXERCISES[index]
        code = exercise["prompt"] + exercise["solution"] + "\n" + "\n".join(exercise["tests"]) + "\n"
        return "```python\n" + re.sub(rf"\b{exercise['entry_point']}\b", choices["function_name"], code) + "```\n"


def local_config(root, server, **overrides):
    config = load_config_file(LOCAL)
    config.output_root = str(root)
    config.inputs.max_files = 48
    config.annotate.update(dict(labels="", num=36))
    config.classify.trees = 40
    config.llm.update(dict(base_url=server.base_url, model="test-model", timeout=5.0))
    config.textbook.num = NUM_SYNTH
    config.exercises.num = NUM_SYNTH
    for dotted, value in overrides.items():
        section, field = dotted.split(".")
        config[section][field] = value
    return config


def config_flags(config) -> list:
    """The command-line overrides that make configs/data/local.py into `config`."""
    base = load_config_file(LOCAL)
    flags = []
    for section, fields in config.to_dict().items():
        if isinstance(fields, dict):
            flags += [f"--config.{section}.{k}={v}" for k, v in fields.items()
                      if v != base[section][k] and v is not None]
        elif fields != base[section]:
            flags.append(f"--config.{section}={fields}")
    return flags


def data_files(root, as_root=None) -> dict:
    """{relative path: bytes} of every stage's outputs, manifests and answer caches aside; with
    `as_root`, the root's path in reports (their input patterns) reads as that one's."""
    out = {}
    for name in stages.STAGE_NAMES:
        directory = os.path.join(root, name)
        for rel in manifest.files_under(directory):
            with open(os.path.join(directory, rel), "rb") as f:
                content = f.read()
            out[f"{name}/{rel}"] = content.replace(str(root).encode(), str(as_root).encode()) if as_root else content
    return out


def write_benchmark(path) -> str:
    """A HumanEval-format file whose one problem is the first exercise the model will return."""
    exercise = EXERCISES[0]
    problem = {"task_id": "Local/0", "prompt": exercise["prompt"], "canonical_solution": exercise["solution"],
               "test": "def check(candidate):\n    pass\n", "entry_point": exercise["entry_point"]}
    path.write_text(json.dumps(problem) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    """One full run of the local recipe against the server with faults, decontaminating against
    HumanEval and a local benchmark file; yields (config, server, outcome)."""
    with OpenAIServer(RecipeModel(), FAULTS) as server:
        work = tmp_path_factory.mktemp("recipe")
        benchmark = write_benchmark(work / "local_benchmark.jsonl")
        config = local_config(work / "data", server, **{"decontaminate.benchmarks": benchmark})
        outcome = recipe.run(config)
        yield config, server, outcome


def test_every_stage_runs_and_writes_a_manifest_with_inputs_options_code_counts_and_time(recipe_run):
    config, server, outcome = recipe_run
    assert outcome == {name: "ran" for name in stages.STAGE_NAMES}
    assert server.outcomes["ok"] > 0 and set(FAULTS.values()) <= set(server.outcomes)
    for name in stages.STAGE_NAMES:
        found = manifest.read_manifest(os.path.join(config.output_root, name))
        assert found["stage"] == name and found["key"] and found["digest"]
        assert found["code_version"]["data_pipeline_sha256"] == manifest.code_version()["data_pipeline_sha256"]
        assert isinstance(found["wall_seconds"], float) and found["outputs"]["files"] >= 1
        upstream = {f"stage:{u}" for u in {s.name: s for s in stages.STAGES}[name].after}
        assert upstream <= set(found["inputs"])
    for name, pattern in stages.training_sources(config, config.output_root).items():
        counted = manifest.read_manifest(os.path.dirname(pattern))["counts"]["records"]
        assert counted == len(list(records.read_records(pattern))) > 0, name
    labels = [json.loads(line) for line in open(os.path.join(config.output_root, "annotate", "labels.jsonl"))]
    assert len(labels) == 36 and all(label["score"] == annotation_score(label["id"]) for label in labels)
    exercises = json.load(open(os.path.join(config.output_root, "exercises", "report", "decontamination.json")))
    assert exercises["benchmarks"] == {"humaneval": 164, "local_benchmark": 1}
    assert exercises["per_problem"]["local_benchmark"]["Local/0"]["records"] == 1


def test_each_stage_output_equals_its_own_command(recipe_run, tmp_path):
    """Every command a manifest records, run as `python -m` in one fresh interpreter with the
    stage's output directory moved elsewhere, writes the same record shards and reports."""
    config, server, _ = recipe_run
    root = config.output_root
    other = tmp_path / "own"
    script = ["import runpy, sys"]
    for name in stages.STAGE_NAMES:
        for line in manifest.read_manifest(os.path.join(root, name))["commands"]:
            argv = shlex.split(line.replace(f"{root}/{name}", f"{other}/{name}"))[2:]
            script.append(f"sys.argv = {argv!r}")
            script.append(f"try:\n    runpy.run_module({argv[0]!r}, run_name='__main__')\n"
                          "except SystemExit as e:\n    assert not e.code, e.code")
    done = subprocess.run([sys.executable, "-c", "\n".join(script)], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OPENAI_API_KEY="test"))
    assert done.returncode == 0, done.stderr[-3000:]
    ours, theirs = data_files(root), data_files(other, as_root=root)
    # Times, library versions and plots aside; skops names a forest's arrays differently on every
    # save, so the two classifiers are compared by their scores.
    volatile = re.compile(r"(report/report\.json|labels\.report\.json|metadata\.json|\.png|model\.skops)$")
    assert sorted(ours) == sorted(theirs)
    for rel, content in ours.items():
        if not volatile.search(rel):
            assert content == theirs[rel], rel
    vectors = np.random.default_rng(0).normal(size=(64, 384)).astype(np.float32)
    scores = [classifier_lib.positive_probability(classifier_lib.load_classifier(os.path.join(r, "classify")).forest,
                                                  vectors) for r in (root, other)]
    np.testing.assert_array_equal(*scores)


def test_rerun_with_nothing_changed_runs_no_stage_and_sends_no_request(recipe_run):
    config, server, _ = recipe_run
    before = server.requests
    assert recipe.run(config) == {name: "up to date" for name in stages.STAGE_NAMES}
    assert server.requests == before


def moved(config, root, server, **overrides):
    """`config` with its output root at `root` (a copy of the run's) and `overrides`."""
    shutil.copytree(config.output_root, root)
    return local_config(root, server, **{"decontaminate.benchmarks": config.decontaminate.benchmarks, **overrides})


def test_a_changed_filter_threshold_reruns_filter_and_what_follows_only(recipe_run, tmp_path):
    config, server, _ = recipe_run
    root = tmp_path / "data"
    changed = moved(config, root, server, **{"filter.threshold": 0.3})
    before = server.requests
    outcome = recipe.run(changed)
    rerun = {"filter", "dedup", "decontaminate", "cache"}
    assert outcome == {name: "ran" if name in rerun else "up to date" for name in stages.STAGE_NAMES}
    assert server.requests == before
    report = json.load(open(root / "filter" / "report.json"))
    assert report["threshold"] == 0.3


def test_sigkill_during_dedup_then_rerun_gives_the_uninterrupted_outputs(recipe_run, tmp_path):
    config, server, _ = recipe_run
    root = tmp_path / "data"
    same = moved(config, root, server)
    shutil.rmtree(root / "dedup")
    recipe.run(same)
    uninterrupted = data_files(root)
    shutil.rmtree(root / "dedup")
    cmd = [sys.executable, "-m", "data_pipeline.recipe", f"--config={LOCAL}"] + config_flags(same)
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (root / "dedup").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read()[-2000:]
    assert not (root / "dedup" / manifest.MANIFEST_FILE).exists()
    # A shard cut short by the kill, under a name the rerun does not write: it must not survive.
    (root / "dedup" / "records-00004-of-00005.jsonl").write_text('{"id": "stdlib/half')
    outcome = recipe.run(same)
    assert outcome["dedup"] == "ran" and outcome["filter"] == "up to date"
    assert data_files(root) == uninterrupted


def test_only_and_until_run_part_of_the_recipe(recipe_run, tmp_path):
    config, server, _ = recipe_run
    root = tmp_path / "data"
    same = moved(config, root, server)
    shutil.rmtree(root / "dedup")
    decontaminated = manifest.read_manifest(str(root / "decontaminate"))
    with pytest.raises(recipe.RecipeError, match="stage dedup has not finished"):
        recipe.run(same, only="decontaminate")
    assert recipe.run(same, only="dedup") == {"dedup": "ran"}
    assert manifest.read_manifest(str(root / "decontaminate")) == decontaminated
    assert recipe.run(same, until="dedup") == {name: "up to date" for name in stages.STAGE_NAMES[:5]}


def test_the_printed_command_trains(recipe_run, tmp_path):
    config, _, _ = recipe_run
    pretrain = recipe.training_commands(config)[0]
    assert f"--config.data.cache_dir={config.output_root}/cache" in pretrain
    # The printed sources name the Tasks the cache stage wrote, so training reads the cache.
    sources = {flag.split("=", 1)[0].rsplit(".", 1)[1]: flag.split("=", 1)[1]
               for flag in shlex.split(pretrain) if flag.startswith("--config.data.sources.")}
    for name in tasks.task_names("code_textbook", "", sources).values():
        if not name.startswith("phi1_stackoverflow"):
            assert (Path(config.output_root) / "cache" / name / "COMPLETED").exists(), name
    argv = shlex.split(pretrain)[1:] + ["--config.train.steps=2", "--config.train.eval_every=2",
                                        "--config.train.eval_steps=1", f"--config.workdir={tmp_path / 'run'}"]
    done = subprocess.run([sys.executable] + argv, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "step 2" in done.stdout + done.stderr


def test_the_data_card_has_every_section_and_its_plots(recipe_run):
    config, _, _ = recipe_run
    card = os.path.join(config.output_root, "data_card")
    data_card.write(config)
    text = open(os.path.join(card, "DATA_CARD.md")).read()
    for heading in ("Tokens per source", "Filter", "Dedup", "Decontamination", "Exercises in the sandbox", "Stages"):
        assert f"## {heading}" in text
    facts = json.load(open(os.path.join(card, "card.json")))
    assert all(facts["sources"][s]["tokens"] > 0 for s in ("stack", "textbook", "exercises"))
    assert facts["exercise_sandbox"]["sandboxed"] == NUM_SYNTH
    for png in ("tokens.png", "decontamination.png", "filter_histogram.png"):
        assert open(os.path.join(card, png), "rb").read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("problem, override, message", [
    ("missing input", {"inputs.code": "/nonexistent/stack/*.parquet"}, "no input files match"),
    ("unreachable endpoint", {"llm.base_url": "http://127.0.0.1:9/v1"}, "cannot be reached"),
    ("benchmark not in HumanEval format", {"decontaminate.benchmarks": "BAD"}, "not a HumanEval or MBPP problem"),
])
def test_bad_input_is_one_message_before_any_stage_runs(tmp_path, problem, override, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "not a benchmark problem"}\n')
    (field, value), = override.items()
    with OpenAIServer(RecipeModel()) as server:
        config = local_config(tmp_path / "data", server, **{field: str(bad) if value == "BAD" else value})
        cmd = [sys.executable, "-m", "data_pipeline.recipe", f"--config={LOCAL}"] + config_flags(config)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert server.requests == 0
    assert done.returncode == 2, (problem, done.stderr[-2000:])
    errors = [line for line in done.stderr.splitlines() if line.startswith("data_pipeline.recipe: error")]
    assert len(errors) == 1 and message in errors[0], (problem, done.stderr[-2000:])
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("argv, message", [
    (["--until", "tokenize"], "unknown stage 'tokenize'; the stages are code_input, annotate"),
    (["--config.filter.cutoff=0.5"], "bad config override: 'cutoff'"),
    (["--config=/nonexistent/data.py"], "cannot load --config: "),
])
def test_an_unknown_stage_or_field_is_refused_before_anything_runs(tmp_path, argv, message):
    done = subprocess.run([sys.executable, "-m", "data_pipeline.recipe", f"--config={LOCAL}",
                           f"--config.output_root={tmp_path / 'data'}"] + argv,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and f"data_pipeline.recipe: error: {message}" in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "data").exists()
