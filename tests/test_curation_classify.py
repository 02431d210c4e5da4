"""Training the classifier on human labels of real files: a directory with the forest (skops),
metadata and held-out metrics; bad labels stop with the line named; a classifier refuses vectors
from an embedder it was not trained on; the shipped classifier ranks unseen educational files
above generated ones (ROC AUC >= 0.90)."""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pytest

from data_pipeline import classify, records
from data_pipeline import filter as filter_stage
from data_pipeline.curation import classifier as classifier_lib
from data_pipeline.curation.labelled_files import HELDOUT_PATH, LABELS_PATH, labelled_records
from data_pipeline.curation.scoring import Scorer
from data_pipeline.embedder import default_model_path, load_embedder
from data_pipeline.stdlib_source import stdlib_record

PER_CLASS = 12
MAX_CHARS = 1500  # labels were made reading openings; short texts keep embedding fast


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> dict:
    """A few shipped human labels of standard-library files, both classes, and their records."""
    with open(LABELS_PATH) as f:
        labels = [json.loads(line) for line in f if line.strip()]
    stdlib = [l for l in labels if l["id"].startswith("stdlib/")]
    chosen = [l for l in stdlib if l["score"] >= 3][:PER_CLASS] + [l for l in stdlib if l["score"] < 3][:PER_CLASS]
    root = tmp_path_factory.mktemp("classify")
    labels_path = root / "labels.jsonl"
    labels_path.write_text("".join(json.dumps(l) + "\n" for l in chosen)
                           + json.dumps({"id": "stdlib/failed.py", "score": None, "error": "unparseable"}) + "\n")
    shard = str(root / "records.jsonl")
    records.write_shard(shard, [dict(r, text=r["text"][:MAX_CHARS])
                                for r in (stdlib_record(l["id"].removeprefix("stdlib/")) for l in chosen)])
    return {"labels": str(labels_path), "records": shard, "root": root, "chosen": chosen}


@pytest.fixture(scope="module")
def trained(labelled) -> str:
    out = str(labelled["root"] / "model")
    classify.main(["train", "--labels", labelled["labels"], "--input", labelled["records"], "--out", out,
                   "--trees", "50"])
    return out


def test_train_writes_a_safe_model_with_metadata_and_heldout_metrics(trained, labelled):
    with open(os.path.join(trained, classifier_lib.METADATA_FILE)) as f:
        metadata = json.load(f)
    embedder = load_embedder("default")
    assert metadata["embedder"] == {"name": embedder.name, "dim": 384, "spec": "default"}
    assert metadata["threshold"] == 0.5 and metadata["positive_min_score"] == 3
    counts = metadata["label_counts"]
    assert counts["positive"] == counts["negative"] == PER_CLASS and counts["annotation_failures"] == 1
    assert sum(counts["per_score"].values()) == 2 * PER_CLASS
    assert counts["per_score"] == {str(s): sum(l["score"] == s for l in labelled["chosen"]) for s in range(1, 6)}
    metrics = metadata["heldout_metrics"]
    assert metrics["examples"] == metadata["split"]["heldout"] == 6 and metrics["positives"] == 3  # stratified
    assert all(0.0 <= metrics[k] <= 1.0 for k in ("precision", "recall", "f1", "roc_auc"))
    assert {"scikit-learn", "skops", "sentence-transformers"} <= set(metadata["libraries"])
    with open(os.path.join(trained, classifier_lib.MODEL_FILE), "rb") as f:
        assert f.read(2) == b"PK"  # a skops zip archive, not a pickle
    with open(os.path.join(trained, classifier_lib.HISTOGRAM_FILE), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    scores = classifier_lib.load_classifier(trained, embedder).score(embedder.embed(["def f():\n    pass\n"]))
    assert scores.shape == (1,) and 0.0 <= scores[0] <= 1.0


def test_a_different_embedder_is_refused(trained, tmp_path, capsys):
    # The same model with a shorter window: same dimension, different vectors, different name.
    other = tmp_path / "minilm-128"
    shutil.copytree(default_model_path(), other, ignore=shutil.ignore_patterns("model.safetensors"))
    os.symlink(os.path.join(default_model_path(), "model.safetensors"), other / "model.safetensors")
    config = json.loads((other / "sentence_bert_config.json").read_text())
    (other / "sentence_bert_config.json").write_text(json.dumps(dict(config, max_seq_length=128)))
    embedder = load_embedder(str(other))
    assert embedder.dim == 384 and embedder.name != load_embedder("default").name
    with pytest.raises(classifier_lib.EmbedderMismatchError, match="minilm-128.*retrain"):
        classifier_lib.load_classifier(trained, embedder)
    with pytest.raises(classifier_lib.EmbedderMismatchError, match="all-MiniLM-L6-v2"):
        Scorer(trained, str(other))
    shard = str(tmp_path / "input.jsonl")
    records.write_shard(shard, [stdlib_record("bisect.py")])
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:  # the command names the mismatch in its usage line
        filter_stage.main(["--input", shard, "--out", str(tmp_path / "out"), "--classifier", trained,
                           "--embedder", str(other)])
    assert stop.value.code == 2
    assert re.search(r"error: .*minilm-128.*retrain", capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("line,problem", [
    ({"id": "stdlib/bisect.py", "score": 7}, "score 7 is not an integer from 1 to 5"),
    ({"id": "stdlib/bisect.py", "score": "4"}, "score '4' is not an integer"),
    ({"score": 4}, "expected an object with a string 'id'"),
])
def test_bad_labels_stop_with_the_line_named(line, problem, labelled, tmp_path):
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"id": "stdlib/heapq.py", "score": 5}) + "\n" + json.dumps(line) + "\n")
    with pytest.raises(ValueError, match=f"labels.jsonl:2: {problem}"):
        classify.train(str(labels), labelled["records"], str(tmp_path / "out"))


def test_labelled_ids_missing_from_the_input_are_named(labelled, tmp_path):
    labels = tmp_path / "labels.jsonl"
    labels.write_text(open(labelled["labels"]).read() + json.dumps({"id": "stdlib/not_there.py", "score": 2}) + "\n")
    with pytest.raises(ValueError, match=r"1 labelled ids are not in .*stdlib/not_there\.py"):
        classify.train(str(labels), labelled["records"], str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_shipped_classifier_ranks_unseen_educational_files_above_generated_ones():
    from sklearn.metrics import roc_auc_score

    scorer = Scorer()
    assert scorer.classifier.metadata["embedder"]["name"] == load_embedder("default").name
    heldout = list(labelled_records(HELDOUT_PATH))
    with open(LABELS_PATH) as f:
        trained_on = {json.loads(line)["id"] for line in f if line.strip()}
    assert not trained_on & {r["id"] for r in heldout}
    educational = np.array([r["meta"]["kind"] == "educational" for r in heldout])
    assert educational.sum() >= 40 and (~educational).sum() >= 40
    scores = scorer.score([r["text"] for r in heldout])
    assert roc_auc_score(educational, scores) >= 0.90


def _small_forest(n_features: int = 4):
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    return RandomForestClassifier(n_estimators=3, random_state=0).fit(rng.random((40, n_features)), [0, 1] * 20)


def _save(forest, directory, dim: int = 4) -> str:
    metadata = {"embedder": {"name": "test", "dim": dim, "spec": "test"}, "threshold": 0.5}
    classifier_lib.save_classifier(classifier_lib.Classifier(forest, metadata), str(directory))
    return str(directory)


def test_a_crafted_model_file_is_refused_before_use(tmp_path):
    from sklearn.linear_model import LogisticRegression

    forest = _small_forest()
    assert classifier_lib.load_classifier(_save(forest, tmp_path / "good")).forest.n_estimators == 3
    # Node indices past the end of the tree: scikit-learn would read out of bounds at predict time.
    tree = forest.estimators_[1].tree_
    state = tree.__getstate__()
    nodes = state["nodes"].copy()
    nodes["left_child"][0] = 10**6
    tree.__setstate__(dict(state, nodes=nodes))
    with pytest.raises(ValueError, match="tree 1: children_left out of range"):
        classifier_lib.load_classifier(_save(forest, tmp_path / "crafted"))
    with pytest.raises(ValueError, match="tree 0: feature out of range"):
        classifier_lib.load_classifier(_save(_small_forest(n_features=6), tmp_path / "wide", dim=4))
    logistic = LogisticRegression().fit(np.eye(4), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="not a RandomForestClassifier"):
        classifier_lib.load_classifier(_save(logistic, tmp_path / "logistic"))
    with pytest.raises(FileNotFoundError, match="not a classifier directory"):
        classifier_lib.load_classifier(str(tmp_path))


def test_help_says_what_it_reads_and_writes(capsys):
    with pytest.raises(SystemExit):
        classify.main(["train", "--help"])
    text = capsys.readouterr().out
    for needle in ("LABELS", "record shards", "model.skops", "metadata.json", "histogram.png", "--embedder"):
        assert needle in text
