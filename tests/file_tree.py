"""Test helper shared by the tests that compare whole output directories byte for byte."""

import os


def files_under(root) -> dict[str, bytes]:
    """Every file under `root`, by its path relative to `root`, with its bytes."""
    found = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, root)] = f.read()
    return found
