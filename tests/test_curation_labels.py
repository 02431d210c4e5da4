"""The shipped rubric and human-read labels: they resolve to the same text on this machine, the
sets are what the issue claims (spread, disjointness, kinds), and a file that changed or vanished
is reported by id instead of being trained on."""

import json
import os

import pytest

from data_pipeline import records
from data_pipeline.curation import labelled_files
from data_pipeline.curation.labelled_files import (HELDOUT_PATH, LABELS_PATH, RUBRIC_PATH,
                                                   LabelledFileMismatch, labelled_records,
                                                   read_labels)


def _rubric_version() -> int:
    with open(RUBRIC_PATH, encoding="utf-8") as f:
        first = f.readline().strip()
    name, _, value = first.partition(":")
    assert name == "rubric_version", first
    return int(value)


def _package_dir(label_id: str) -> str:
    return os.path.dirname(label_id)


def _write_labels(path, labels) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(label) + "\n" for label in labels)
    return str(path)


@pytest.mark.parametrize("labels_path", [LABELS_PATH, HELDOUT_PATH], ids=["train", "heldout"])
def test_every_shipped_label_resolves_to_the_text_that_was_read(labels_path):
    labels = read_labels(labels_path)
    resolved = list(labelled_records(labels_path))
    assert [r["id"] for r in resolved] == [label["id"] for label in labels]
    for label, record in zip(labels, resolved):
        assert record["text"].strip(), label["id"]
        assert record["meta"]["score"] == label["score"]
        assert 0 < label["meta"]["lines_read"] <= len(record["text"].splitlines())
        assert f"first {label['meta']['lines_read']} lines" in label["model"]


@pytest.mark.parametrize("labels_path", [LABELS_PATH, HELDOUT_PATH], ids=["train", "heldout"])
def test_labels_are_well_formed_against_the_current_rubric(labels_path):
    version = _rubric_version()
    labels = read_labels(labels_path)
    ids = [label["id"] for label in labels]
    assert len(ids) == len(set(ids))
    for label in labels:
        assert label["score"] in (1, 2, 3, 4, 5), label["id"]
        assert label["rubric_version"] == version
        assert label["meta"]["origin"] == label["id"].split("/", 1)[0]
    # Rationales are written per file, so no two files share one.
    rationales = [label["rationale"] for label in labels]
    assert len(rationales) == len(set(rationales))


def test_training_labels_cover_every_score_and_both_classes():
    scores = [label["score"] for label in read_labels(LABELS_PATH)]
    assert len(scores) >= 300
    assert set(scores) == {1, 2, 3, 4, 5}
    assert sum(s >= 3 for s in scores) >= 100
    assert sum(s <= 2 for s in scores) >= 100
    origins = {label["meta"]["origin"] for label in read_labels(LABELS_PATH)}
    assert origins == {"stdlib", "site-packages", "embedded"}


def test_heldout_set_is_unseen_and_split_into_educational_and_generated():
    train = read_labels(LABELS_PATH)
    heldout = read_labels(HELDOUT_PATH)
    assert not {label["id"] for label in train} & {label["id"] for label in heldout}
    # Only the embedded exercises share a directory: all four of its files are used, two per set.
    shared = {_package_dir(label["id"]) for label in train} & {
        _package_dir(label["id"]) for label in heldout}
    assert shared <= {"embedded/exercises"}
    kinds = [label["meta"]["kind"] for label in heldout]
    assert kinds.count("educational") >= 40 and kinds.count("generated") >= 40
    for label in heldout:
        if label["meta"]["kind"] == "educational":
            assert label["score"] >= 4, label["id"]
        else:
            assert label["meta"]["kind"] == "generated" and label["score"] == 1, label["id"]


def test_rubric_ends_with_the_exact_answer_format():
    with open(RUBRIC_PATH, encoding="utf-8") as f:
        text = f.read()
    assert "basic coding concepts" in text
    for score in "12345":
        assert f"**{score}:" in text
    tail = text.strip().split("## Answer format", 1)[1]
    assert '{"score": <1-5>, "rationale": "<one or two sentences>"}' in tail


def test_changed_and_missing_files_are_reported_by_id_before_anything_is_yielded(tmp_path):
    labels = read_labels(LABELS_PATH)[:3]
    labels[0] = {**labels[0], "meta": {**labels[0]["meta"], "sha256": "0" * 64}}
    labels[1] = {**labels[1], "id": "stdlib/no_such_module_here.py"}
    path = _write_labels(tmp_path / "tampered.jsonl", labels)
    resolved = labelled_records(path)
    with pytest.raises(LabelledFileMismatch) as err:
        next(resolved)
    message = str(err.value)
    assert labels[0]["id"] in message and "differ" in message
    assert "stdlib/no_such_module_here.py" in message and "missing" in message
    assert labels[2]["id"] not in message


@pytest.mark.parametrize("line, problem", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"id": "stdlib/bisect.py", "score": 5}', "missing"),
])
def test_malformed_labels_file_names_the_line(tmp_path, line, problem):
    good = json.dumps(read_labels(LABELS_PATH)[0])
    path = tmp_path / "bad.jsonl"
    path.write_text(good + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"bad.jsonl:2: {problem}"):
        read_labels(str(path))


def test_repeated_id_is_refused(tmp_path):
    first = read_labels(LABELS_PATH)[0]
    path = _write_labels(tmp_path / "twice.jsonl", [first, first])
    with pytest.raises(ValueError, match="appears twice"):
        read_labels(path)


def test_cli_writes_record_shards_with_the_labelled_text(tmp_path):
    labels = read_labels(LABELS_PATH)[:5]
    path = _write_labels(tmp_path / "five.jsonl", labels)
    out = tmp_path / "shards"
    labelled_files.main(["--labels", path, "--out", str(out), "--num-shards", "2"])
    written = {r["id"]: r for r in records.read_records(str(out))}
    assert sorted(written) == sorted(label["id"] for label in labels)
    for label in labels:
        record = written[label["id"]]
        assert record["source"] == "stack"
        assert labelled_files.text_sha256(record["text"]) == label["meta"]["sha256"]
        assert record["meta"]["score"] == label["score"]


def test_id_with_an_unknown_origin_is_refused(tmp_path):
    label = {**read_labels(LABELS_PATH)[0], "id": "nowhere/bisect.py"}
    path = _write_labels(tmp_path / "unknown.jsonl", [label])
    with pytest.raises(ValueError, match="nowhere/bisect.py.*origin in"):
        list(labelled_records(path))
