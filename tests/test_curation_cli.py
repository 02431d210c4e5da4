"""The curation commands as a stranger meets them: a missing input is one line saying what is
missing and a usage exit, not a traceback."""

import subprocess
import sys

import pytest

ARGS = {
    "annotate": ["--input", "{missing}", "--out", "{tmp}/labels.jsonl", "--base-url", "http://127.0.0.1:9/v1",
                 "--model", "m", "--num", "1"],
    "classify": ["train", "--labels", "{missing}", "--input", "{missing}", "--out", "{tmp}/clf"],
    "filter": ["--input", "{missing}", "--out", "{tmp}/kept"],
}


@pytest.mark.parametrize("stage", sorted(ARGS))
def test_a_missing_input_is_named_in_one_line(stage, tmp_path):
    missing = str(tmp_path / "nope.jsonl")
    argv = [a.format(missing=missing, tmp=tmp_path) for a in ARGS[stage]]
    done = subprocess.run([sys.executable, "-m", f"data_pipeline.{stage}", *argv], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"python -m data_pipeline.{stage}") and "error:" in last and "nope.jsonl" in last
