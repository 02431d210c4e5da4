"""The seqio group moved to `data_pipeline/seqio_data/` (issue 25); the paths users called before
keep working: `python -m data_pipeline.cache` and `python -m data_pipeline.tokenizer` run the same
commands, and `import data_pipeline.tasks` registers the same seqio Tasks and Mixtures (it is the
very module of the new path, as are `data_pipeline.loader` and `data_pipeline.vocabularies`)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])),
       "JAX_PLATFORMS": "cpu"}
# The old path first, in a fresh process: what it registers, then what the new path adds (nothing,
# when both names are one module).
REGISTERED = """
import json, seqio

def names():
    return [sorted(seqio.TaskRegistry.names()), sorted(seqio.MixtureRegistry.names())]

import data_pipeline.tasks
old = names()
import data_pipeline.seqio_data.tasks
print(json.dumps([old, names(), data_pipeline.tasks is data_pipeline.seqio_data.tasks]))
"""


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=REPO, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    return out


def test_old_commands_and_the_old_tasks_import_still_work():
    # Started together: each pays for importing TensorFlow (and Beam) on its own.
    helps = {name: _start("-m", f"data_pipeline.{name}", "--help") for name in ("cache", "tokenizer")}
    registered = _start("-c", REGISTERED)
    assert "--mixture" in _finish(helps["cache"])
    assert "train" in _finish(helps["tokenizer"])
    old_names, new_names, same_module = json.loads(_finish(registered).splitlines()[-1])
    assert old_names == new_names and same_module
    tasks, mixtures = old_names
    assert "phi1_embedded_textbook" in tasks and "embedded_code_textbook" in mixtures


@pytest.mark.parametrize("name", ["cache", "tokenizer", "tasks", "loader", "vocabularies"])
def test_an_old_path_is_the_new_module(name):
    old = importlib.import_module(f"data_pipeline.{name}")
    assert old is importlib.import_module(f"data_pipeline.seqio_data.{name}")
