"""The embedded "Stack" stand-in: the Python standard library of the running interpreter, found at
run time, as record shards' worth of `{"id", "text", "source": "stack", "meta"}` records.

It takes the place of the filtered Stack shards in DESIGN.md's data flow when nothing has been
downloaded, and it is the real-code corpus for the tokenizer round-trip tests.
"""

from __future__ import annotations

import os
import sysconfig
import tokenize
from typing import Iterator


def stdlib_dir() -> str:
    return sysconfig.get_paths()["stdlib"]


def stdlib_files() -> list[str]:
    """Every `.py` file of the standard library (not site-packages), relative, sorted."""
    root = stdlib_dir()
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in ("site-packages", "__pycache__"))
        found.extend(os.path.relpath(os.path.join(dirpath, n), root)
                     for n in filenames if n.endswith(".py"))
    if not found:
        raise FileNotFoundError(f"no .py files under {root}: is this a full Python install?")
    return sorted(found)


def read_python_source(path: str) -> str:
    """The file's text in its declared encoding (PEP 263). A few test files are deliberately
    undecodable; those are read as latin-1, which maps every byte to one character, so the text
    still holds every byte of the file."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        encoding, _ = tokenize.detect_encoding(iter(data.splitlines(keepends=True)).__next__)
        return data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError):
        return data.decode("latin-1")


def stdlib_record(relpath: str) -> dict:
    return {"id": f"stdlib/{relpath}", "text": read_python_source(os.path.join(stdlib_dir(), relpath)),
            "source": "stack", "meta": {"path": relpath, "license": "PSF-2.0"}}


def stdlib_records() -> Iterator[dict]:
    for relpath in stdlib_files():
        yield stdlib_record(relpath)
