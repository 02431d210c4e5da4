"""Stage manifests of the data recipe (`data_pipeline.recipe`): what a stage read, with which
options and code, and what it wrote. A stage's manifest, `MANIFEST.json` in its output directory,
is written last, so it is the stage's commit: a directory without one holds an interrupted run.

`key` is the sha256 of everything that determines the outputs: the inputs' digests, the options
and the code version. The recipe reruns a stage when its key differs from the manifest's.

Digests: a stage's outputs are hashed by content once, when the stage finishes, and the next stage
takes that digest as its input's. External inputs are fingerprinted by name, size and modification
time (local or `gs://`): hashing The Stack's Parquet files on every rerun would read terabytes to
skip a stage. Small files the recipe ships or is pointed at (labels, benchmark problems) are
hashed by content.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from typing import Any, Iterable, Mapping, Optional

import tensorflow as tf

MANIFEST_FILE = "MANIFEST.json"
RECIPE_MODULES = ("recipe.py", "recipe_stages.py", "recipe_config.py", "manifest.py", "data_card.py")
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _sha256_of_file(path: str, lines: Optional[list[int]] = None) -> str:
    """The file's sha256; with `lines`, its newline count is added to lines[0] in the same read."""
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
            if lines is not None:
                lines[0] += block.count(b"\n")
    return digest.hexdigest()


def files_under(directory: str) -> list[str]:
    """Every file below `directory` (relative, sorted), the manifest excluded."""
    found = []
    for dirpath, _, filenames in tf.io.gfile.walk(directory):
        for name in filenames:
            rel = os.path.relpath(os.path.join(dirpath, name), directory)
            if rel != MANIFEST_FILE:
                found.append(rel)
    return sorted(found)


def describe_outputs(directory: str) -> dict[str, Any]:
    """A stage's outputs, each file read once: how many files, a sha256 over their names and
    contents, and counts: records in its top-level record shards (`*-of-*.jsonl`, one line each)
    and examples in seqio cache stats (`<task>/stats.<split>.json`)."""
    digest = hashlib.sha256()
    records = [0]
    examples = 0
    names = files_under(directory)
    for rel in names:
        path = os.path.join(directory, rel)
        is_shard = "/" not in rel and re.search(r"-of-\d+\.jsonl$", rel) is not None
        digest.update(rel.encode() + b"\0" + _sha256_of_file(path, records if is_shard else None).encode() + b"\n")
        if re.search(r"/stats\.\w+\.json$", rel):
            with tf.io.gfile.GFile(path) as f:
                examples += json.load(f).get("examples", 0)
    counts = {"records": records[0], **({"cached_examples": examples} if examples else {})}
    return {"files": len(names), "digest": digest.hexdigest(), "counts": counts}


def file_digest(path: str) -> str:
    return _sha256_of_file(path)


def stat_fingerprint(paths: Iterable[str]) -> str:
    """sha256 over each file's path, size and modification time."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        stat = tf.io.gfile.stat(path)
        digest.update(f"{path}\0{stat.length}\0{stat.mtime_nsec}\n".encode())
    return digest.hexdigest()


def code_version() -> dict[str, str]:
    """sha256 of the stage code, the data pipeline's Python sources but the recipe's own modules
    (what the recipe adds to a stage is its command line, which the key holds), and the git commit
    when the code is a checkout (for the reader; the digest decides)."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(_PACKAGE_DIR):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(n for n in filenames if n.endswith(".py")):
            if dirpath == _PACKAGE_DIR and name in RECIPE_MODULES:
                continue
            path = os.path.join(dirpath, name)
            digest.update(os.path.relpath(path, _PACKAGE_DIR).encode() + b"\0")
            with open(path, "rb") as f:
                digest.update(f.read())
    version = {"data_pipeline_sha256": digest.hexdigest()}
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_PACKAGE_DIR, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        version["git_commit"] = commit
    except (OSError, subprocess.SubprocessError):
        pass
    return version


def stage_key(inputs: Mapping[str, str], options: Mapping[str, Any], code: Mapping[str, str]) -> str:
    material = {"inputs": dict(inputs), "options": options, "code": code["data_pipeline_sha256"]}
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def read_manifest(directory: str) -> Optional[dict]:
    path = os.path.join(directory, MANIFEST_FILE)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError:
            return None  # a manifest cut short is no commit


def write_manifest(directory: str, manifest: Mapping[str, Any]) -> None:
    """Written under a temporary name and renamed: the manifest is there whole or not at all."""
    path = os.path.join(directory, MANIFEST_FILE)
    partial = path + ".partial"
    with tf.io.gfile.GFile(partial, "w") as f:
        f.write(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    tf.io.gfile.rename(partial, path, overwrite=True)
