"""The embedded default data: enough textbook sections and exercises, every exercise's solution
passes its asserts, the shipped shards match their authoring sources, and broken authoring files
are reported with file and line."""

import ast
import re
import textwrap

import pytest

from data_pipeline import embedded_data


@pytest.fixture(scope="module")
def built():
    return embedded_data.build_records()


def test_shipped_shards_are_built_from_the_sources(built):
    textbook, exercises = built
    assert embedded_data.load_textbook() == textbook
    assert [e["id"] for e in embedded_data.load_exercises()] == [r["id"] for r in exercises]
    assert len(textbook) >= 50 and len(exercises) >= 200


def test_every_exercise_passes_its_tests():
    exercises = embedded_data.load_exercises()
    for exercise in exercises:
        assert exercise["tests"], exercise["id"]
        embedded_data.run_exercise(exercise)


def test_exercise_fields_fit_sandboxes_and_prompts():
    for exercise in embedded_data.load_exercises():
        prompt = exercise["prompt"]
        assert prompt.startswith(f"def {exercise['entry_point']}(") and prompt.endswith('"""\n')
        function = ast.parse(prompt + exercise["solution"]).body[0]
        assert isinstance(function, ast.FunctionDef) and ast.get_docstring(function)
        assert all(t.startswith("assert ") and exercise["entry_point"] in t
                   for t in exercise["tests"])


def test_a_wrong_solution_is_caught():
    exercise = dict(embedded_data.load_exercises()[0])
    exercise["solution"] = "    return None\n"
    with pytest.raises(AssertionError, match=exercise["id"]):
        embedded_data.run_exercise(exercise)


def test_textbook_sections_are_varied_and_their_code_compiles(built):
    textbook, _ = built
    assert len({r["meta"]["audience"] for r in textbook}) >= 20
    for record in textbook:
        blocks = re.findall(r"```python\n(.*?)```", record["text"], re.S)
        assert blocks, record["id"]
        for block in blocks:
            compile(textwrap.dedent(block), record["id"], "exec")
        prose = re.sub(r"```python\n.*?```", "", record["text"], flags=re.S)
        assert len(prose.split()) >= 80, record["id"]


def test_authoring_errors_name_file_and_line(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('def f(x):\n    """Doc."""\n    return x\n\n\nx = 3\n')
    with pytest.raises(embedded_data.EmbeddedDataError, match=f"{bad}:6"):
        embedded_data.parse_exercises(str(bad))
    bad.write_text('def f(x):\n    return x\n')
    with pytest.raises(embedded_data.EmbeddedDataError, match=f"{bad}:1: f needs a docstring"):
        embedded_data.parse_exercises(str(bad))
    md = tmp_path / "t.md"
    md.write_text("## Title\n\nno audience line\n```python\nx = 1\n```\n")
    with pytest.raises(embedded_data.EmbeddedDataError, match=f"{md}:1"):
        embedded_data.parse_textbook(str(md))
