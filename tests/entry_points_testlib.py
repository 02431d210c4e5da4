"""setup.py's entry points as this checkout declares them, for tests that go through them.

An editable install records entry points when it is installed, so a checkout whose setup.py
changed since (or a tree run through PYTHONPATH beside another tree's install) would be tested
against stale ones. `declare_checkout_entry_points` puts a throwaway `phi1_jax-0.dist-info`
(METADATA + entry_points.txt written from setup.py) first on sys.path: importlib.metadata takes
the first distribution of a name, so the lookups see exactly what setup.py declares."""

from __future__ import annotations

import ast
import pathlib

REPO = pathlib.Path(__file__).resolve().parent.parent


def declared_entry_points() -> dict[str, list[str]]:
    """The `entry_points=` argument of setup.py's `setup(...)` call, read without running it."""
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup":
            for keyword in node.keywords:
                if keyword.arg == "entry_points":
                    return ast.literal_eval(keyword.value)
    return {}


def declare_checkout_entry_points(tmp_path: pathlib.Path, monkeypatch) -> None:
    dist_info = tmp_path / "entry-points" / "phi1_jax-0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: phi1-jax\nVersion: 0\n")
    lines = []
    for group, entries in declared_entry_points().items():
        lines.append(f"[{group}]")
        lines.extend(entries)
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(dist_info.parent))
