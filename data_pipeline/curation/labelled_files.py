"""Resolves the shipped labels files (labels_v1.jsonl, heldout_v1.jsonl) to the files they label
on this machine, as record shards' worth of `{"id", "text", "source": "stack", "meta"}` records:
the input that `data_pipeline.classify train --labels ...` joins with the labels by id.

A label's id names where its file lives:

- `stdlib/<relpath>`: the running interpreter's standard library (as stdlib_source makes ids);
- `site-packages/<relpath>`: the installed packages' pure-Python directory (versions pinned in
  constraints.txt, so another machine installed from it has the same files);
- `embedded/<relpath>`: `data_pipeline/embedded/`.

Every label records the sha256 of the file's text as it was read when labelled. A file that is
missing, or whose text hashes differently, RAISES `LabelledFileMismatch` naming every such id
(all of them, found before anything is yielded): a score describes one exact text, and training on
a silently different file (another package version, an edited stdlib) would teach the classifier
labels that are not true of its input. Nothing is skipped silently.

    python -m data_pipeline.curation.labelled_files --labels LABELS.jsonl --out DIR

writes DIR/labelled-0000i-of-0000N.jsonl (records.write_shards). No label points into pip's
vendored copies (pip itself is not pinned in constraints.txt); rich's own files are used instead.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sysconfig
from typing import Iterator, Sequence

from data_pipeline import records
from data_pipeline.embedded_data import EMBEDDED_DIR
from data_pipeline.stdlib_source import read_python_source, stdlib_dir
from evaluation.problems import read_jsonl

CURATION_DIR = os.path.dirname(os.path.abspath(__file__))
RUBRIC_PATH = os.path.join(CURATION_DIR, "rubric.md")
LABELS_PATH = os.path.join(CURATION_DIR, "labels_v1.jsonl")
HELDOUT_PATH = os.path.join(CURATION_DIR, "heldout_v1.jsonl")
LABEL_FIELDS = ("id", "score", "rationale", "model", "rubric_version", "meta")


class LabelledFileMismatch(RuntimeError):
    """Some labelled files are missing here or differ from the text that was labelled."""


def origin_roots() -> dict[str, str]:
    """Directory on this machine for each id prefix."""
    return {"stdlib": stdlib_dir(), "site-packages": sysconfig.get_paths()["purelib"],
            "embedded": EMBEDDED_DIR}


def source_path(label_id: str) -> str:
    """The file on this machine that `label_id` names; ValueError for an unknown prefix."""
    origin, sep, relpath = label_id.partition("/")
    roots = origin_roots()
    if not sep or origin not in roots or not relpath:
        raise ValueError(f"label id {label_id!r}: expected '<origin>/<relpath>' with origin in "
                         f"{sorted(roots)}")
    return os.path.join(roots[origin], relpath)


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def read_labels(labels_path: str) -> list[dict]:
    """The labels file's lines (.jsonl or .jsonl.gz); ValueError naming the line for bad JSON, a
    missing field or a repeated id."""
    labels, seen = [], set()
    for lineno, label in read_jsonl(labels_path):
        missing = [k for k in LABEL_FIELDS if k not in label]
        if missing or "sha256" not in label.get("meta", {}):
            raise ValueError(f"{labels_path}:{lineno}: missing {missing or ['meta.sha256']}")
        if label["id"] in seen:
            raise ValueError(f"{labels_path}:{lineno}: id {label['id']!r} appears twice")
        seen.add(label["id"])
        labels.append(label)
    return labels


def labelled_records(labels_path: str) -> Iterator[dict]:
    """One record per label, in the labels file's order, with the file's current text; raises
    LabelledFileMismatch (before yielding anything) if any file is missing or changed."""
    resolved, missing, changed = [], [], []
    for label in read_labels(labels_path):
        path = source_path(label["id"])
        if not os.path.isfile(path):
            missing.append(label["id"])
            continue
        text = read_python_source(path)
        if text_sha256(text) != label["meta"]["sha256"]:
            changed.append(label["id"])
            continue
        resolved.append((label, text))
    if missing or changed:
        raise LabelledFileMismatch(
            f"{labels_path}: {len(missing)} labelled files missing here {missing}, "
            f"{len(changed)} differ from the text that was labelled (sha256) {changed}; "
            "install the versions pinned in constraints.txt or relabel these files")
    for label, text in resolved:
        yield {"id": label["id"], "text": text, "source": "stack",
               "meta": {**label["meta"], "score": label["score"],
                        "rubric_version": label["rubric_version"]}}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m data_pipeline.curation.labelled_files", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", default=LABELS_PATH,
                        help="labels JSONL to resolve (default: the shipped labels_v1.jsonl)")
    parser.add_argument("--out", required=True,
                        help="directory (local or gs://) to write the record shards to")
    parser.add_argument("--num-shards", type=int, default=1)
    args = parser.parse_args(argv)
    resolved = list(labelled_records(args.labels))
    paths = records.write_shards(args.out, resolved, args.num_shards, prefix="labelled")
    print(f"{len(resolved)} records -> " + ", ".join(paths))


if __name__ == "__main__":
    main()
