"""`python -m data_pipeline.synth` against the local OpenAI-compatible server: every prompt ends
kept or rejected with its reason, hostile exercises are rejected by the sandbox (and the host is
untouched), bad textbook sections are rejected, faults change nothing, and the mixtures train on
the generated shards."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from data_pipeline import embedded_data, records, synth
from data_pipeline.llm_client import LLMClient
from data_pipeline.synthesis import prompts, textbook_check
from evaluation.problems import load_problems

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROSE = ("Binary search keeps an invariant: if the target is present, it lies between low and high. "
         "Each comparison halves that interval, so a list of a million items needs about twenty steps. ")
# Real answers: the embedded textbook sections and handwritten exercises, one per prompt index.
SECTIONS = [r["text"] for r in embedded_data.load_textbook()]
EXERCISES = [e for e in embedded_data.load_exercises() if e["family"] == "handwritten"]
FAST_METHODS = ("substring", "ngram", "ast")  # decontamination without loading the embedding model


def section(title: str, code: str) -> str:
    return f"## {title}\n\n{PROSE * 4}\n\n```python\n{code}```\n\n{PROSE * 2}\n"


GOOD_CODE = "def halve(n: int) -> int:\n    return n // 2\n\nassert halve(9) == 4\n"
TEXTBOOK_ANSWERS = {
    "kept": lambda index, name: SECTIONS[index],
    "duplicate": lambda index, name: SECTIONS[0],
    "refusal": lambda index, name: "I'm sorry, but I cannot write that section. " + PROSE * 8,
    "boilerplate opener": lambda index, name: "Sure! Here is the section you asked for.\n\n" + section("X", GOOD_CODE),
    "code block does not parse": lambda index, name: section("Broken", "def halve(n:\n    return n // 2\n"),
    "too short": lambda index, name: "## Tiny\n\n```python\nx = 1\n```\n",
}


def renamed(exercise: dict, name: str) -> str:
    """An embedded exercise as a model would write it, its function renamed to `name`."""
    code = exercise["prompt"] + exercise["solution"] + "\n" + "\n".join(exercise["tests"]) + "\n"
    return "```python\n" + re.sub(rf"\b{exercise['entry_point']}\b", name, code) + "```\n"


def exercise(name: str, body: str, tests: str) -> str:
    return (f"```python\ndef {name}(values: list) -> int:\n    \"\"\"Sum of the even numbers in `values`.\"\"\"\n"
            f"{body}\n\n{tests}```\n")


GOOD_BODY = "    return sum(v for v in values if v % 2 == 0)"
GOOD_TESTS = "assert {name}([1, 2, 3, 4]) == 6\nassert {name}([]) == 0\nassert {name}([-2, 5]) == -2\n"


def humaneval_copy(name: str) -> str:
    """HumanEval/0 (prompt + canonical solution) under another name, with passing asserts."""
    problem = load_problems()["HumanEval/0"]
    code = (problem.prompt + problem.canonical_solution).replace(problem.entry_point, name)
    return (f"```python\n{code}\nassert {name}([1.0, 2.0, 3.0], 0.5) == False\n"
            f"assert {name}([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3) == True\n```\n")


def exercise_answers(sentinel: str) -> dict:
    attack = ("    try:\n        with open({path!r}, 'w') as f:\n            f.write('pwned')\n"
              "    except OSError:\n        pass\n    import os, signal\n"
              "    os.kill(os.getppid(), signal.SIGKILL)\n    os._exit(0)").format(path=sentinel)
    return {
        "kept": lambda index, name: renamed(EXERCISES[index], name),
        "duplicate": lambda index, name: renamed(EXERCISES[0], name),
        "contaminated": lambda index, name: humaneval_copy(name),
        "tests failed": lambda index, name: exercise(name, GOOD_BODY, f"assert {name}([2]) == 3\n"),
        "tests timed out": lambda index, name: exercise(name, "    while True:\n        pass",
                                                        GOOD_TESTS.format(name=name)),
        "attack": lambda index, name: exercise(name, attack, f"assert {name}([2]) == 2\n"),
        "wrong function name": lambda index, name: renamed(EXERCISES[index], "something_else"),
        "syntax error": lambda index, name: f"```python\ndef {name}(values:\n    return 1\n```\n",
    }


def scripted_server(openai_server, kind: str, seed: int, plan: list, answers: dict, faults=()):
    """A server answering prompt i of (kind, seed) with answers[plan[i]](i, function name or None)."""
    built = prompts.build_prompts(kind, seed, len(plan))
    by_prompt = {(p.messages[-1]["content"], p.params["seed"]): (i, p.choices.get("function_name"))
                 for i, p in enumerate(built)}
    assert len(by_prompt) == len(plan), "prompts must differ"

    def answer(body: dict) -> str:
        index, name = by_prompt[(body["messages"][-1]["content"], body["seed"])]
        return answers[plan[index]](index, name)

    return openai_server(answer, faults, slow_seconds=1.5)


def client_for(server, tmp_path, **options) -> LLMClient:
    return LLMClient(base_url=server.base_url, model="test-model", cache_dir=str(tmp_path / "cache"), timeout=0.5,
                     backoff_base=0.01, backoff_max=0.05, concurrency=4, batch_poll_interval=0.01, **options)


def read_out(out) -> tuple[list[dict], dict, list[dict]]:
    kept = list(records.read_records(str(out)))
    report = json.loads((out / "report" / "report.json").read_text())
    rejected = [json.loads(line) for line in (out / "report" / "rejected.jsonl").read_text().splitlines()]
    return kept, report, rejected


def test_textbook_sections_are_validated_under_faults_one_outcome_per_prompt(openai_server, tmp_path):
    plan = ["kept", "refusal", "kept", "boilerplate opener", "code block does not parse", "kept", "too short", "kept",
            "duplicate"]
    faults = ["429", "500", "drop", "truncated", "malformed", "slow"] + [None] * 100
    server = scripted_server(openai_server, "textbook", 7, plan, TEXTBOOK_ANSWERS, faults)
    out = tmp_path / "out"
    client = client_for(server, tmp_path)
    report = synth.synthesize("textbook", client=client, num=len(plan), out=str(out), seed=7,
                              decontamination_methods=FAST_METHODS)
    kept, written, rejected = read_out(out)

    assert written == report
    assert sorted(r["meta"]["generation"]["index"] for r in kept) == [i for i, o in enumerate(plan) if o == "kept"]
    assert sorted((r["index"], r["reason"]) for r in rejected) == [(i, o) for i, o in enumerate(plan) if o != "kept"]
    assert report["kept"] + sum(report["rejected"].values()) == report["requested"] == len(plan)
    assert len({r["id"] for r in kept}) == len(kept) and all(r["source"] == "textbook" for r in kept)
    assert report["client"]["new_usage"] == {"prompt_tokens": server.served_prompt_tokens,
                                             "completion_tokens": server.served_completion_tokens}
    assert len(server.served_prompts) == len(plan) and sum(report["client"]["retries"].values()) == 6
    record = kept[0]
    generation = record["meta"]["generation"]
    index = generation["index"]
    expected = prompts.textbook_prompt(7, index)
    assert generation["messages"] == list(expected.messages) and generation["params"] == expected.params
    assert record["text"] == SECTIONS[index] and record["meta"]["title"] == SECTIONS[index].split("\n")[0][3:]
    duplicate = next(r for r in rejected if r["reason"] == "duplicate")
    assert duplicate["detail"].startswith("exact duplicate of textbook/synth-7-0000000")


def test_only_python_tagged_blocks_must_parse():
    with_output = SECTIONS[1] + "\nRunning it prints:\n\n```\n0 1 2\n```\n"
    assert textbook_check.rejection(with_output) is None
    assert textbook_check.rejection(with_output.replace("```\n0 1 2", "```python\n0 1 2")) == "code block does not parse"


def test_hostile_and_broken_exercises_are_rejected_and_only_passing_ones_kept(openai_server, tmp_path):
    sentinel = tmp_path / "host_file.txt"
    sentinel.write_text("untouched")
    plan = ["kept", "tests failed", "tests timed out", "attack", "wrong function name", "syntax error", "kept",
            "contaminated", "duplicate"]
    server = scripted_server(openai_server, "exercises", 3, plan, exercise_answers(str(sentinel)))
    out = tmp_path / "out"
    report = synth.synthesize("exercises", client=client_for(server, tmp_path), num=len(plan), out=str(out),
                              seed=3, sandbox_workers=2, sandbox_timeout=1.0, decontamination_methods=FAST_METHODS)
    kept, _, rejected = read_out(out)

    reasons = dict(sorted((r["index"], r["reason"]) for r in rejected))
    assert reasons == {1: "tests failed", 2: "tests timed out", 3: "tests failed", 4: "wrong function name",
                       5: "syntax error", 7: "contaminated", 8: "duplicate"}
    contaminated = next(r for r in rejected if r["reason"] == "contaminated")
    assert "HumanEval/0" in contaminated["detail"]
    assert report["kept"] == 2 and sentinel.read_text() == "untouched"
    for record in kept:
        meta, choices = record["meta"], record["meta"]["generation"]["choices"]
        assert meta["entry_point"] == choices["function_name"] and record["source"] == "exercises"
        assert record["text"] == meta["prompt"] + meta["solution"]
        original = EXERCISES[meta["generation"]["index"]]
        assert meta["prompt"] == original["prompt"].replace(original["entry_point"], meta["entry_point"])
        assert len(meta["tests"]) == len(original["tests"])
        assert meta["tests"][0].startswith(f"assert {meta['entry_point']}(")


def test_budget_stop_writes_a_report_and_exits_3_then_a_higher_cap_completes(openai_server, tmp_path):
    plan = ["kept"] * 6
    server = scripted_server(openai_server, "textbook", 1, plan, TEXTBOOK_ANSWERS)
    out = tmp_path / "out"
    common = ["textbook", "--base-url", server.base_url, "--model", "m", "--num", "6", "--out", str(out),
              "--seed", "1", "--concurrency", "1", "--completion-price", "10000", "--no-progress",
              "--decontamination-methods", "substring,ngram"]
    assert synth.main([*common, "--budget-usd", "2"]) == synth.BUDGET_EXIT_CODE
    report = json.loads((out / "report" / "report.json").read_text())
    assert "budget cap of $2.0000 reached" in report["stopped_by_budget"] and report["answered"] < 6
    answered = server.requests
    assert synth.main([*common, "--budget-usd", "100"]) == 0
    assert server.requests == 6 and answered < 6
    assert json.loads((out / "report" / "report.json").read_text())["kept"] == 6


def test_batch_mode_writes_the_same_records(openai_server, tmp_path):
    plan = ["kept", "refusal", "kept"]
    server = scripted_server(openai_server, "textbook", 5, plan, TEXTBOOK_ANSWERS)
    live = synth.synthesize("textbook", client=client_for(server, tmp_path / "live"), num=3, out=str(tmp_path / "live"),
                            seed=5, decontamination_methods=FAST_METHODS)
    batched = synth.synthesize("textbook", client=client_for(server, tmp_path / "batch"), num=3,
                               out=str(tmp_path / "batch"), seed=5, batch=True, decontamination_methods=FAST_METHODS)
    assert len(server.batches) == 1 and server.outcomes["batch"] == 3
    assert (batched["kept"], batched["rejected"]) == (live["kept"], live["rejected"]) == (2, {"refusal": 1})
    assert read_out(tmp_path / "batch")[0] == read_out(tmp_path / "live")[0]


def test_sigkill_mid_run_then_restart_requests_nothing_that_had_been_answered(openai_server, tmp_path):
    num, answered_before_kill = 24, 10
    plan = ["kept"] * num
    first = scripted_server(openai_server, "textbook", 2, plan, TEXTBOOK_ANSWERS,
                            lambda number, body: "hang" if number >= answered_before_kill else None)
    out = tmp_path / "out"

    def command(base_url: str) -> list[str]:
        return [sys.executable, "-m", "data_pipeline.synth", "textbook", "--base-url", base_url, "--model", "m",
                "--num", str(num), "--out", str(out), "--seed", "2", "--concurrency", "4", "--no-progress",
                "--decontamination-methods", "substring,ngram"]

    process = subprocess.Popen(command(first.base_url), cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while len(first.served_prompts) < answered_before_kill and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # the answers reach the generator; its other 4 requests hang in flight
        assert process.poll() is None
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        process.kill()
    assert len(first.served_prompts) == answered_before_kill and not (out / "report" / "report.json").exists()

    second = scripted_server(openai_server, "textbook", 2, plan, TEXTBOOK_ANSWERS)
    subprocess.run(command(second.base_url), cwd=REPO, check=True, timeout=300)
    assert not set(second.received_prompts) & set(first.served_prompts)
    assert len(second.received_prompts) == num - answered_before_kill
    report = json.loads((out / "report" / "report.json").read_text())
    assert (report["kept"], report["client"]["cached_answers"], report["client"]["new_answers"]) == (
        num, answered_before_kill, num - answered_before_kill)
    assert len({r["id"] for r in records.read_records(str(out))}) == num


def test_a_benchmark_file_not_in_humaneval_format_stops_before_any_request(openai_server, tmp_path, capsys):
    server = openai_server(lambda body: SECTIONS[0])
    bad = tmp_path / "bench.jsonl"
    bad.write_text('{"question": "not a problem"}\n')
    with pytest.raises(SystemExit) as stopped:
        synth.main(["textbook", "--num", "2", "--out", str(tmp_path / "out"), "--model", "m",
                    "--base-url", server.base_url, "--benchmark", str(bad), "--no-progress"])
    assert stopped.value.code == 2 and "not a HumanEval or MBPP problem" in capsys.readouterr().err
    assert server.requests == 0


def test_help_says_what_it_reads_and_writes(capsys):
    with pytest.raises(SystemExit):
        synth.main(["--help"])
    text = capsys.readouterr().out
    assert "Reads:" in text and "Writes" in text and "report/report.json" in text


def test_the_mixtures_train_on_generated_shards(openai_server, tmp_path):
    """One short training run on the exercises mixture; the textbook mixture's batches are read
    from the generated shards by the same loader (a second compile would double the test's time)."""
    from data_pipeline.seqio_data.loader import make_train_iterator
    from phi1_jax.train import train
    from train_testlib import run_config

    config = run_config(str(tmp_path / "workdir"), steps=2)
    for kind, answers in (("textbook", TEXTBOOK_ANSWERS), ("exercises", exercise_answers(str(tmp_path / "x")))):
        server = scripted_server(openai_server, kind, 0, ["kept"] * 12, answers)
        out = tmp_path / kind
        report = synth.synthesize(kind, client=client_for(server, tmp_path / kind), num=12, out=str(out),
                                  sandbox_workers=2, decontamination_methods=FAST_METHODS)
        assert report["kept"] == 12
        config.data.sources[kind] = str(out / f"{kind}-*.jsonl")

    textbook_only = config.data.copy_and_resolve_references()
    textbook_only.mixture = "code_textbook"
    textbook_only.mixture_rates.update(dict(stack=0.0, stackoverflow=0.0))
    batch = next(iter(make_train_iterator(textbook_only, seq_len=32, batch_size=4, shard_index=0, shard_count=1,
                                          seed=0, split="train")))
    assert batch["decoder_loss_weights"].sum() > 0

    config.data.mixture = "code_exercises"
    train(config)
    losses = [json.loads(line) for line in open(os.path.join(config.workdir, "metrics.jsonl"))]
    assert [m["step"] for m in losses if "loss" in m] == [1, 2]
