"""Record shards: the three containers round-trip real records; bad input fails clearly, naming the
file and line."""

import json

import pytest

from data_pipeline import records, stdlib_source
from data_pipeline.seqio_data import tasks


@pytest.fixture(scope="module")
def stdlib_records():
    return [stdlib_source.stdlib_record(p) for p in stdlib_source.stdlib_files()[:40]]


@pytest.mark.parametrize("suffix", ["jsonl", "jsonl.gz", "tfrecord", "array_record"])
def test_containers_round_trip(tmp_path, stdlib_records, suffix):
    paths = records.write_shards(str(tmp_path), stdlib_records, 3, suffix=suffix)
    assert len(paths) == 3
    got = list(records.read_records(str(tmp_path / f"*.{suffix}")))
    assert sorted(got, key=lambda r: r["id"]) == sorted(stdlib_records, key=lambda r: r["id"])
    # A directory and a comma-separated list name the same files.
    assert records.expand_pattern(str(tmp_path)) == sorted(paths)
    assert records.expand_pattern(",".join(reversed(paths))) == sorted(paths)


def test_malformed_lines_are_counted_and_located(tmp_path, caplog):
    good = [json.dumps({"id": str(i), "text": "x", "source": "stack"}) for i in range(999)]
    path = tmp_path / "shard.jsonl"
    path.write_text("\n".join(good[:500] + ['{"id": 1, "text": "no"}'] + good[500:]) + "\n")
    got = list(records.read_shard(str(path)))
    assert len(got) == 999  # 1 bad of 1000 is within the default 0.1%
    assert f"{path}:501" in caplog.text and "'id'" in caplog.text

    path.write_text("\n".join(good[:3] + ["{not json", "[1, 2]"]) + "\n")
    with pytest.raises(records.MalformedShardError) as err:
        list(records.read_shard(str(path)))
    assert f"{path}:4" in str(err.value) and f"{path}:5" in str(err.value)
    assert "2 of 5" in str(err.value)
    assert len(list(records.read_shard(str(path), max_bad_fraction=0.5))) == 3


def test_missing_pattern_and_empty_source(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-"):
        records.expand_pattern(str(tmp_path / "nothing-*.jsonl"))
    (tmp_path / "empty.jsonl").write_text("")
    source = tasks._file_source("stack", str(tmp_path / "empty.jsonl"), 0.001)
    with pytest.raises(records.EmptySourceError, match="every shard is empty"):
        source.list_shards("train")
    with pytest.raises(ValueError, match="unknown record shard format"):
        records.shard_format("data.csv")


def test_write_rejects_invalid_records(tmp_path):
    with pytest.raises(ValueError, match="'text'"):
        records.write_shard(str(tmp_path / "x.jsonl"), [{"id": "a", "source": "s"}])


def test_stages_chain_by_directory_past_the_reports_beside_their_shards(tmp_path, stdlib_records):
    from data_pipeline.dedup import dedup

    records.write_shard(str(tmp_path / "in.jsonl"), stdlib_records[:12])
    dedup(str(tmp_path / "in.jsonl"), str(tmp_path / "deduped"))
    assert (tmp_path / "deduped" / "clusters.jsonl").exists()  # a report beside the shards
    by_directory = list(records.read_records(str(tmp_path / "deduped")))
    assert by_directory == list(records.read_records(str(tmp_path / "deduped" / "records-*")))
    assert by_directory and {r["id"] for r in by_directory} <= {r["id"] for r in stdlib_records}
    # A directory of plain shard names (no numbering) still reads all of them.
    (tmp_path / "plain").mkdir()
    records.write_shard(str(tmp_path / "plain" / "a.jsonl"), stdlib_records[:2])
    assert records.expand_pattern(str(tmp_path / "plain")) == [str(tmp_path / "plain" / "a.jsonl")]
