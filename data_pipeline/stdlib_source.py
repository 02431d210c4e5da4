"""The embedded "Stack" stand-in: the Python standard library of the running interpreter, found at
run time, as record shards' worth of `{"id", "text", "source": "stack", "meta"}` records.

It takes the place of the filtered Stack shards in DESIGN.md's data flow when nothing has been
downloaded, and it is the real-code corpus for the tokenizer round-trip tests. The wider
`installed-python` stand-in (standard library plus installed packages, cut into disjoint pools)
is the code input of the local data recipe (`configs/data/local.py`) and of the data ablation.
"""

from __future__ import annotations

import argparse
import os
import sysconfig
import tokenize
import zlib
from typing import Iterator, Sequence


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


INSTALLED_PYTHON = "installed-python"
# The Stack's files are mostly small; a few huge generated ones would dominate a small pool.
_POOL_MAX_FILE_BYTES = 64 << 10


def installed_python_pools(max_files: int, pools: int = 1) -> list[list[tuple[str, str]]]:
    """(record id, path) of up to `max_files` Python files of the standard library and the
    installed packages (the `installed-python` stand-in for The Stack) in each of `pools` disjoint
    pools cut by a hash of the id; chosen by a hash of the id, so the choice is the same on every
    run and machine with the same packages. One walk of the files serves every pool."""
    found = [(f"stdlib/{rel}", os.path.join(stdlib_dir(), rel)) for rel in stdlib_files()]
    purelib = sysconfig.get_paths()["purelib"]
    for dirpath, dirnames, filenames in os.walk(purelib):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        found.extend((f"site-packages/{os.path.relpath(os.path.join(dirpath, n), purelib)}",
                      os.path.join(dirpath, n)) for n in sorted(filenames) if n.endswith(".py"))
    sized = sorted((zlib.crc32(i.encode()), i, p) for i, p in found if 0 < os.path.getsize(p) <= _POOL_MAX_FILE_BYTES)
    by_pool: list[list[tuple[str, str]]] = [[] for _ in range(pools)]
    for crc, record_id, path in sized:
        if len(by_pool[crc % pools]) < max_files:
            by_pool[crc % pools].append((record_id, path))
    return [sorted(files) for files in by_pool]


def installed_python_files(max_files: int, pools: int = 1, pool: int = 0) -> list[tuple[str, str]]:
    """Pool `pool` of `installed_python_pools(max_files, pools)`."""
    if not 0 <= pool < pools:
        raise ValueError(f"pool {pool} does not exist: there are {pools} pools (0 to {pools - 1})")
    return installed_python_pools(max_files, pools)[pool]


def installed_python_records(files: Sequence[tuple[str, str]]) -> Iterator[dict]:
    for record_id, path in files:
        yield {"id": record_id, "text": read_python_source(path), "source": "stack",
               "meta": {"path": record_id.split("/", 1)[1]}}


def main(argv: Sequence[str] | None = None) -> None:
    from data_pipeline import records

    parser = argparse.ArgumentParser(
        prog="python -m data_pipeline.stdlib_source",
        description="Write the installed-python stand-in for The Stack (standard library and installed "
                    "packages, files up to 64 KB) as record shards OUT/records-*.jsonl.")
    parser.add_argument("--out", required=True, help="directory for the record shards")
    parser.add_argument("--max-files", type=int, default=600, help="files in the pool")
    parser.add_argument("--pools", type=int, default=1, help="disjoint pools to cut the files into")
    parser.add_argument("--pool", type=int, default=0, help="which pool to write")
    parser.add_argument("--num-shards", type=int, default=4)
    args = parser.parse_args(argv)
    if args.max_files < 1 or args.pools < 1:
        parser.error("--max-files and --pools must be at least 1")
    try:
        files = installed_python_files(args.max_files, args.pools, args.pool)
    except ValueError as error:
        parser.error(str(error))
    records.write_shards(args.out, list(installed_python_records(files)), args.num_shards)
    print(f"wrote {len(files)} files in {args.num_shards} shards to {args.out}")


if __name__ == "__main__":
    main()
