"""The Colab notebook (tpu/phi1_jax_colab.ipynb) executed top to bottom with nbclient on this
working tree, the CPU and its 8 simulated devices, with parameters that keep the run short: it
trains, plots, samples, scores HumanEval in the sandbox, exports with `convert to-hf` and reloads
with transformers, whose greedy tokens must equal our sampler's (the notebook asserts it)."""

import json
import os
import re
import sys
import time

import nbformat
import pytest
from nbclient import NotebookClient

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(REPO, "tpu", "phi1_jax_colab.ipynb")


def _read() -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK, as_version=4)


def test_notebook_is_stored_without_outputs():
    notebook = _read()
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.outputs for cell in code] == [[]] * len(code)
    assert {cell.execution_count for cell in code} == {None}
    assert sum("parameters" in cell.metadata.get("tags", []) for cell in code) == 1


def _with_parameters(notebook: nbformat.NotebookNode, **values) -> nbformat.NotebookNode:
    """papermill's convention: a cell of assignments right after the one tagged `parameters`."""
    index = next(i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", []))
    source = "\n".join(f"{name} = {value!r}" for name, value in values.items())
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    return notebook


@pytest.fixture
def kernel_of_this_interpreter(tmp_path, monkeypatch) -> str:
    """A kernelspec that runs this very interpreter, so the notebook sees the packages the tests
    run with (a `python3` spec elsewhere on the machine could name another Python)."""
    spec_dir = tmp_path / "jupyter" / "kernels" / "phi1-jax-tests"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "phi1-jax tests", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "phi1-jax-tests"


def test_notebook_runs_top_to_bottom_and_pytorch_gives_our_greedy_tokens(tmp_path, kernel_of_this_interpreter):
    notebook = _with_parameters(_read(), PROJECT_DIR=REPO, INSTALL=False, STEPS=12, HUMANEVAL_PROBLEMS=2,
                                MAX_NEW_TOKENS=16, WORKDIR=str(tmp_path / "workdir"), HF_DIR=str(tmp_path / "hf"))
    client = NotebookClient(notebook, timeout=300, kernel_name=kernel_of_this_interpreter,
                            resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    client.execute()
    print(f"notebook ran in {time.perf_counter() - start:.0f} s")

    def text(cell) -> str:
        return "".join(output.get("text", "") for output in cell.outputs if output.output_type == "stream")

    sources = [cell.source for cell in notebook.cells]
    cell = lambda marker: notebook.cells[next(i for i, s in enumerate(sources) if marker in s)]  # noqa: E731
    assert "mesh: {'data': 8, 'fsdp': 1, 'tensor': 1}" in text(cell("sharding.make_mesh"))
    assert any(output.output_type == "display_data" and "image/png" in output.data
               for output in cell("plot_losses").outputs)
    assert text(cell("jax_tokens = generate(")).startswith("def add(a, b):")
    humaneval = text(cell("humaneval.run("))
    assert "HumanEval/0 " in humaneval and "HumanEval/1 " in humaneval
    print(text(cell("PhiForCausalLM")))  # the completion and the logit difference, for the log
    same = re.search(r"PyTorch's greedy completion is phi1_jax's, token for token \((\d+) new tokens\)",
                     text(cell("PhiForCausalLM")))
    assert same and int(same.group(1)) > 0
    assert {"config.json", "model.safetensors"} <= set(os.listdir(tmp_path / "hf"))
