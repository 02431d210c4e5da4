"""The filter stage end to end on real files: record shards and Parquet in The Stack's schema, with
every kind of bad input, scored by the shipped classifier. The Beam pipeline on the DirectRunner
writes the same kept shards, scores and counts as the single-process path, and bad input is
counted by reason without stopping either."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_pipeline import filter as filter_stage
from data_pipeline import records
from data_pipeline.curation.classifier import load_classifier
from data_pipeline.stdlib_source import stdlib_record

# Small files of both kinds, cut short: embedding is the slow part.
RECORD_FILES = ["bisect.py", "colorsys.py", "graphlib.py", "this.py", "encodings/cp1252.py",
                "encodings/mac_roman.py", "keyword.py", "token.py"]
PARQUET_FILES = ["heapq.py", "fnmatch.py", "encodings/cp437.py", "stat.py", "_pydecimal.py"]
MAX_CHARS = 1500
MAX_BYTES = 4000


def _record(relpath: str) -> dict:
    record = stdlib_record(relpath)
    return dict(record, text=record["text"][:MAX_CHARS])


def stack_table(rows: list[dict], contents: pa.Array) -> pa.Table:
    """A table in the schema of The Stack (bigcode/the-stack-dedup)."""
    n = len(rows)
    return pa.table({
        "hexsha": [r["hexsha"] for r in rows],
        "size": pa.array([r["size"] for r in rows], pa.int64()),
        "ext": ["py"] * n,
        "lang": ["Python"] * n,
        "max_stars_repo_path": [r["path"] for r in rows],
        "max_stars_repo_name": ["python/cpython"] * n,
        "max_stars_repo_head_hexsha": ["0" * 40] * n,
        "max_stars_repo_licenses": pa.array([["PSF-2.0"]] * n, pa.list_(pa.string())),
        "max_stars_count": pa.array([60000] * n, pa.int64()),
        "max_stars_repo_stars_event_min_datetime": ["2017-02-10T19:23:51.000Z"] * n,
        "max_stars_repo_stars_event_max_datetime": ["2023-03-01T00:00:00.000Z"] * n,
        "content": contents,
        "avg_line_length": pa.array([30.5] * n, pa.float64()),
        "max_line_length": pa.array([79] * n, pa.int64()),
        "alphanum_fraction": pa.array([0.7] * n, pa.float64()),
    })


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("filter_inputs")
    good = [_record(p) for p in RECORD_FILES]
    empty = dict(_record("bisect.py"), id="empty-file", text="  \n\n")
    oversize = dict(stdlib_record("heapq.py"), id="oversize-file")
    surrogate = dict(_record("this.py"), id="lone-surrogate", text="x = '\ud800'\n")
    shard = root / "stack-00000.jsonl"
    lines = [json.dumps(r) for r in good[:4] + [empty]]
    lines += ['{"id": "no-text", "source": "stack"}', "not json at all"]
    lines += [json.dumps(r) for r in good[4:] + [oversize, surrogate]]
    shard.write_bytes(("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
                      + b'{"id": "latin1", "text": "caf\xe9", "source": "stack"}\n')
    # A gzip shard cut in the middle: its first records read, then the container fails.
    gz = root / "stack-00001.jsonl.gz"
    copies = [dict(_record(p), id=f"stdlib/{p}#{i}") for i, p in enumerate(["glob.py", "shlex.py"] * 5)]
    full = gzip.compress(("\n".join(json.dumps(r) for r in copies) + "\n").encode())
    gz.write_bytes(full[: len(full) // 2])

    stack_rows = [dict(hexsha=f"{i:040x}", size=len(_record(p)["text"]), path=f"Lib/{p}",
                       content=_record(p)["text"].encode()) for i, p in enumerate(PARQUET_FILES)]
    stack_rows.append(dict(hexsha="f" * 40, size=9, path="Lib/bad.py", content=b"caf\xe9 = 1\n"))
    contents = pa.array([r["content"] for r in stack_rows], pa.binary()).view(pa.string())
    parquet = root / "the-stack-python-0000.parquet"
    pq.write_table(stack_table(stack_rows, contents), parquet, row_group_size=3)
    (root / "the-stack-python-0001.parquet").write_bytes(b"PAR1 this is not a parquet file PAR1")
    return {"dir": str(root), "good_ids": {r["id"] for r in good} | {r["hexsha"] for r in stack_rows[:-1]},
            "parquet": str(parquet)}


@pytest.fixture(scope="module")
def runs(inputs, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("filter_out")
    options = dict(max_bytes=MAX_BYTES, num_shards=3, batch_size=5)
    single = filter_stage.filter_records(inputs["dir"], str(out / "single"), **options)
    beam = filter_stage.filter_with_beam(inputs["dir"], str(out / "beam"), ["--runner=DirectRunner"], **options)
    return {"single": (single, out / "single"), "beam": (beam, out / "beam")}


def _scores(out_dir) -> dict:
    with open(out_dir / filter_stage.SCORES_FILE) as f:
        return {line["id"]: line for line in map(json.loads, f)}


def test_bad_inputs_are_counted_by_reason_and_do_not_stop_the_run(runs, inputs):
    report, out_dir = runs["single"]
    assert report["bad_inputs"]["by_reason"] == {
        "corrupt_file": 2,  # the cut gzip shard and the file that is not Parquet
        "malformed_record": 2,  # a record without text, a line that is not JSON
        "undecodable_bytes": 3,  # latin-1 bytes in a shard line and in a Parquet row, a lone surrogate
        "empty": 1,
        "oversize": 1,
    }
    examples = report["bad_inputs"]["examples"]
    assert any("the-stack-python-0001.parquet" in e for e in examples["corrupt_file"])
    assert any("stack-00001.jsonl.gz" in e for e in examples["corrupt_file"])
    assert any("#row=5" in e for e in examples["undecodable_bytes"])
    scores = _scores(out_dir)
    scored_ids = {i for i, line in scores.items() if line["score"] is not None}
    # Everything good was scored, including the records read before the gzip shard broke.
    assert inputs["good_ids"] <= scored_ids and any(i.startswith("stdlib/glob") for i in scored_ids)
    assert {scores[i]["bad"] for i in ("empty-file", "oversize-file", "lone-surrogate", "f" * 40)} == \
        {"empty", "oversize", "undecodable_bytes"}
    assert report["scored"] == len(scored_ids) and report["inputs"] == report["scored"] + 9


def test_kept_records_are_those_at_or_above_the_threshold(runs):
    report, out_dir = runs["single"]
    threshold = load_classifier().threshold
    scores = _scores(out_dir)
    kept = [r for path in sorted(out_dir.glob("kept-*.jsonl")) for r in records.read_shard(str(path))]
    assert {r["id"] for r in kept} == {i for i, line in scores.items()
                                        if line["score"] is not None and line["score"] >= threshold}
    assert 0 < report["kept"] == len(kept) < report["scored"]
    assert sum(report["score_histogram"]["counts"]) == report["scored"]
    parquet_kept = [r for r in kept if r["meta"].get("hexsha")]
    assert all(r["meta"]["lang"] == "Python" and r["meta"]["max_stars_repo_licenses"] == ["PSF-2.0"]
               for r in parquet_kept)
    assert (out_dir / "histogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_beam_and_single_process_give_the_same_outputs(runs):
    (single, single_dir), (beam, beam_dir) = runs["single"], runs["beam"]
    single_shards = sorted(p.name for p in single_dir.glob("kept-*"))
    assert single_shards == sorted(p.name for p in beam_dir.glob("kept-*")) and len(single_shards) == 3
    for name in single_shards:
        assert (single_dir / name).read_bytes() == (beam_dir / name).read_bytes()
    single_scores, beam_scores = _scores(single_dir), _scores(beam_dir)
    assert single_scores.keys() == beam_scores.keys()
    for record_id, line in single_scores.items():
        assert line.get("bad") == beam_scores[record_id].get("bad")
        if line["score"] is not None:
            np.testing.assert_allclose(beam_scores[record_id]["score"], line["score"], atol=1e-9)
    for key in ("inputs", "scored", "kept", "bad_inputs", "score_histogram", "threshold", "embedder"):
        assert beam[key] == single[key], key
    assert (single["path"], beam["path"]) == ("single-process", "beam")


def test_parquet_format_can_be_forced_and_bad_format_is_named(inputs, tmp_path):
    (tmp_path / "notes.txt").write_text("x = 1\n")
    with pytest.raises(ValueError, match="notes.txt: unknown record shard format"):
        filter_stage.filter_records(str(tmp_path / "notes.txt"), str(tmp_path / "out"))
    renamed = tmp_path / "stack-rows.bin"
    renamed.write_bytes(open(inputs["parquet"], "rb").read())
    report = filter_stage.filter_records(str(renamed), str(tmp_path / "out"), input_format="parquet",
                                         max_bytes=MAX_BYTES)
    assert report["scored"] == len(PARQUET_FILES) and report["bad_inputs"]["by_reason"]["undecodable_bytes"] == 1


def test_help_says_what_it_reads_and_writes(capsys):
    with pytest.raises(SystemExit):
        filter_stage.main(["--help"])
    text = capsys.readouterr().out
    for needle in ("record shards", "Parquet", "scores.jsonl", "report.json", "--runner", "--classifier"):
        assert needle in text
