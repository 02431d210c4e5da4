"""The packages are layered one way (docs/architecture.md, "Layers"): a module imports only modules
of its own layer or of layers below it. Every import statement of every module under phi1_jax/,
data_pipeline/ and evaluation/ is checked, at any depth (module level, inside functions, under
`if TYPE_CHECKING`), against the layer table that the architecture page shows; the test reads that
table from the page, so the page and the check cannot drift apart."""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("phi1_jax", "data_pipeline", "evaluation")
DOC = REPO / "docs" / "architecture.md"
TABLE_MARKER = "<!-- layer table: tests/test_layering.py reads it -->"


def layer_table(doc: pathlib.Path = DOC) -> dict[str, int]:
    """Module name -> layer number, from the rows `| L<n> | ... | `name`, `name` ... |` that
    follow the marker on the architecture page."""
    text = doc.read_text()
    assert TABLE_MARKER in text, f"{doc} lost its layer table marker"
    table: dict[str, int] = {}
    for line in text.split(TABLE_MARKER, 1)[1].lstrip("\n").splitlines():
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        match = re.fullmatch(r"L(\d+)", cells[0])
        if match is None:
            continue  # the header and its rule
        for name in re.findall(r"`([\w.]+)`", cells[-1]):
            assert name not in table, f"{name} is in two layers of the table"
            table[name] = int(match.group(1))
    return table


def layer_of(module: str, table: dict[str, int]) -> int | None:
    """The layer of the longest table name that is `module` or a package above it."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if name in table:
            return table[name]
    return None


def module_name(path: pathlib.Path, root: pathlib.Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str, root: pathlib.Path) -> bool:
    base = root.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imported_modules(path: pathlib.Path, root: pathlib.Path):
    """(line, module) for every import in the file, relative imports resolved, and `from P import
    name` counted as importing `P.name` when that is a module."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield node.lineno, candidate if is_module(candidate, root) else base


def upward_imports(root: pathlib.Path, table: dict[str, int]) -> list[str]:
    """`file:line: importer (Ln) imports target (Lm)` for every import of a higher layer."""
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            importer = module_name(path, root)
            own = layer_of(importer, table)
            assert own is not None, f"{importer} is in no layer of {DOC.name}'s table"
            for line, target in imported_modules(path, root):
                if target.split(".")[0] not in PACKAGES:
                    continue
                theirs = layer_of(target, table)
                if theirs is not None and theirs > own:
                    found.append(f"{path.relative_to(root)}:{line}: {importer} (L{own}) imports "
                                 f"{target} (L{theirs})")
    return found


def test_every_import_points_down_or_sideways():
    upward = upward_imports(REPO, layer_table())
    assert not upward, "imports from a higher layer (docs/architecture.md, Layers):\n" + "\n".join(upward)


def test_every_name_in_the_table_is_a_module():
    stale = [name for name in layer_table() if not is_module(name, REPO)]
    assert not stale, f"the layer table names modules that do not exist: {stale}"


def test_the_check_finds_an_upward_import_at_any_depth(tmp_path):
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "evaluation" / "sandbox.py").write_text("import os\n")
    (tmp_path / "evaluation" / "humaneval.py").write_text("from . import sandbox\n")
    (tmp_path / "phi1_jax" / "model.py").write_text("from data_pipeline import records\n")
    (tmp_path / "data_pipeline" / "records.py").write_text("from evaluation.sandbox import Job\n")
    (tmp_path / "data_pipeline" / "embedder.py").write_text(
        "def load():\n    from phi1_jax import model\n    return model\n")
    (tmp_path / "evaluation" / "problems.py").write_text(
        "if True:\n    from . import humaneval\n")
    table = layer_table()
    assert upward_imports(tmp_path, table) == [
        "data_pipeline/embedder.py:2: data_pipeline.embedder (L1) imports phi1_jax.model (L2)",
        "evaluation/problems.py:2: evaluation.problems (L0) imports evaluation.humaneval (L3)",
    ]


@pytest.mark.parametrize("module, layer", [("evaluation.sandbox", 0), ("evaluation.problems", 0),
                                           ("data_pipeline.seqio_data.tasks", 1),
                                           ("phi1_jax.checkpoint_embedder", 2),
                                           ("evaluation.humaneval", 3), ("evaluation", 3)])
def test_layer_of(module, layer):
    assert layer_of(module, layer_table()) == layer
