"""The embedded default data set: original textbook sections and CodeExercises-style exercises that
ship in `data_pipeline/embedded/`, so the whole recipe runs with no download and no API key. In
DESIGN.md's data flow they stand in for the synthetic textbook and exercise record shards; the
exercises are also sandbox fixtures (evaluation) and few-shot examples (synthetic generation).

Authoring sources (edit these, then rebuild):

- `embedded/textbook/*.md`: sections, each starting with `## Title`, followed by an
  `Audience: ...` line, then prose and fenced Python code.
- `embedded/exercises/*.py`: ordinary Python files; each top-level function is an exercise whose
  signature + docstring are the prompt and whose remaining body is the solution, and the `assert`
  statements after it (up to the next function) are its tests. Running the file runs every test.
- `exercise_families.py`: parametrised families of further exercises (same fields).

    python -m data_pipeline.embedded_data build     # writes embedded/textbook.jsonl, exercises.jsonl
    python -m data_pipeline.embedded_data check     # runs every exercise's tests

Record shards written (the `{"id", "text", "source", "meta"}` format of records.py):

- textbook.jsonl: `source="textbook"`, `text` = the section's markdown,
  `meta = {"title", "audience", "file"}`.
- exercises.jsonl: `source="exercises"`, `text` = prompt + solution (the CodeExercises training
  text), `meta = {"prompt", "solution", "tests", "entry_point", "family", "file"}` where `prompt`
  is `def ...:` plus its docstring (ends with a newline; top-level imports above the function come
  first), `solution` is the body after the
  docstring, `tests` is a list of assert statements, and `prompt + solution` is a complete function.
  `load_exercises()` returns these as flat dicts `{"id", "prompt", "solution", "tests",
  "entry_point", "family"}`, the shape HumanEval-style sandboxes and generation prompts want.
"""

from __future__ import annotations

import argparse
import ast
import glob
import json
import os
import re
from data_pipeline import records

EMBEDDED_DIR = os.path.join(os.path.dirname(__file__), "embedded")
TEXTBOOK_JSONL = os.path.join(EMBEDDED_DIR, "textbook.jsonl")
EXERCISES_JSONL = os.path.join(EMBEDDED_DIR, "exercises.jsonl")
_SECTION_RE = re.compile(r"^## (?P<title>.+)\n+Audience: (?P<audience>.+)\n", re.MULTILINE)


class EmbeddedDataError(ValueError):
    """An authoring file breaks the format described in the module docstring."""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def parse_textbook(path: str) -> list[dict]:
    """Textbook records of one markdown file."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    starts = [m.start() for m in re.finditer(r"^## ", text, re.MULTILINE)]
    if not starts:
        raise EmbeddedDataError(f"{path}:1: no '## Title' section found")
    out = []
    for start, end in zip(starts, starts[1:] + [len(text)]):
        section = text[start:end].strip() + "\n"
        line = text.count("\n", 0, start) + 1
        m = _SECTION_RE.match(section)
        if not m:
            raise EmbeddedDataError(f"{path}:{line}: section must start with '## Title' and an "
                                    "'Audience: ...' line")
        if "```python" not in section:
            raise EmbeddedDataError(f"{path}:{line}: section {m['title']!r} has no Python code")
        out.append({"id": f"textbook/{_slug(m['title'])}", "text": section, "source": "textbook",
                    "meta": {"title": m["title"].strip(), "audience": m["audience"].strip(),
                             "file": os.path.basename(path)}})
    return out


def exercise_record(name: str, prompt: str, solution: str, tests: list[str], family: str,
                    origin: str) -> dict:
    return {"id": f"exercises/{name}", "text": prompt + solution, "source": "exercises",
            "meta": {"prompt": prompt, "solution": solution, "tests": tests, "entry_point": name,
                     "family": family, "file": origin}}


def parse_exercises(path: str) -> list[dict]:
    """Exercise records of one authoring `.py` file."""
    with open(path, encoding="utf-8") as f:
        source = f.read()
    return exercises_from_source(source, path, "handwritten", os.path.basename(path))


def exercises_from_source(source: str, where: str, family: str, origin: str) -> list[dict]:
    """Exercise records of Python source in the authoring format: each top-level function with a
    docstring and a body is an exercise, the asserts after it are its tests. Top-level imports
    belong to the prompt of the function after them. EmbeddedDataError names `where:line`. Also
    the parser of synthetic exercises (data_pipeline.synthesis.exercise_check)."""
    lines = source.splitlines(keepends=True)
    try:
        tree = ast.parse(source, filename=where)
    except SyntaxError as e:
        raise EmbeddedDataError(f"{where}:{e.lineno}: {e.msg}") from e
    out: list[dict] = []
    imports = ""
    for node in tree.body:
        at = f"{where}:{node.lineno}"
        if isinstance(node, ast.FunctionDef):
            doc = node.body[0] if node.body else None
            if not (isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant)
                    and isinstance(doc.value.value, str)) or len(node.body) < 2:
                raise EmbeddedDataError(f"{at}: {node.name} needs a docstring and a body")
            first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            prompt = imports + "".join(lines[first - 1:doc.end_lineno])
            solution = "".join(lines[doc.end_lineno:node.end_lineno])
            if not solution.endswith("\n"):
                solution += "\n"
            out.append(exercise_record(node.name, prompt, solution, [], family, origin))
            imports = ""
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            imports += ast.get_source_segment(source, node) + "\n"
        elif isinstance(node, ast.Assert):
            if not out:
                raise EmbeddedDataError(f"{at}: assert before any exercise")
            out[-1]["meta"]["tests"].append(ast.get_source_segment(source, node))
        elif not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)):
            raise EmbeddedDataError(f"{at}: only imports, functions and asserts may appear at top level")
    for record in out:
        if not record["meta"]["tests"]:
            raise EmbeddedDataError(f"{where}: exercise {record['meta']['entry_point']} has no asserts")
    return out


def build_records() -> tuple[list[dict], list[dict]]:
    """(textbook records, exercise records) from the authoring sources; ids are unique."""
    from data_pipeline import exercise_families

    textbook = [r for p in sorted(glob.glob(os.path.join(EMBEDDED_DIR, "textbook", "*.md")))
                for r in parse_textbook(p)]
    exercises = [r for p in sorted(glob.glob(os.path.join(EMBEDDED_DIR, "exercises", "*.py")))
                 for r in parse_exercises(p)]
    exercises += exercise_families.family_records()
    for kind, recs in (("textbook", textbook), ("exercise", exercises)):
        seen: dict[str, str] = {}
        for r in recs:
            if r["id"] in seen:
                raise EmbeddedDataError(f"{kind} id {r['id']!r} defined twice "
                                        f"({seen[r['id']]} and {r['meta']['file']})")
            seen[r["id"]] = r["meta"]["file"]
    return textbook, exercises


def run_exercise(exercise: dict) -> None:
    """Executes prompt + solution, then each test; raises AssertionError naming the failing one."""
    namespace: dict = {}
    exec(compile(exercise["prompt"] + exercise["solution"], exercise["id"], "exec"), namespace)
    for test in exercise["tests"]:
        try:
            exec(compile(test, exercise["id"], "exec"), namespace)
        except AssertionError as e:
            raise AssertionError(f"{exercise['id']}: failed {test}") from e


def load_records(path: str) -> list[dict]:
    return list(records.read_shard(path, max_bad_fraction=0.0))


def load_textbook() -> list[dict]:
    return load_records(TEXTBOOK_JSONL)


def load_exercises() -> list[dict]:
    """The shipped exercises as `{"id", "prompt", "solution", "tests", "entry_point", "family"}`."""
    return [{"id": r["id"], **{k: r["meta"][k] for k in
                               ("prompt", "solution", "tests", "entry_point", "family")}}
            for r in load_records(EXERCISES_JSONL)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m data_pipeline.embedded_data",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["build", "check"])
    args = parser.parse_args(argv)
    textbook, exercises = build_records()
    failures = []
    for r in exercises:
        try:
            run_exercise({"id": r["id"], **r["meta"]})
        except Exception as e:  # report every broken exercise, not just the first
            failures.append(f"{r['id']}: {type(e).__name__}: {e}")
    if failures:
        raise SystemExit("broken exercises:\n" + "\n".join(failures))
    if args.command == "build":
        print(f"{records.write_shard(TEXTBOOK_JSONL, textbook)} textbook sections -> {TEXTBOOK_JSONL}")
        print(f"{records.write_shard(EXERCISES_JSONL, exercises)} exercises -> {EXERCISES_JSONL}")
    else:
        print(json.dumps({"textbook_sections": len(textbook), "exercises": len(exercises)}))


if __name__ == "__main__":
    main()
