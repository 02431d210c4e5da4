"""`python -m data_pipeline.classify train`: DESIGN.md's "embed -> train RandomForest" step.

Reads a labels file (one `{"id", "score", ...}` JSON object per line, as `data_pipeline.annotate`
writes and `data_pipeline/curation/labels_v1.jsonl` ships) and the record shards holding those
ids, embeds the labelled texts with `data_pipeline.embedder`, trains a random forest on a
stratified split (positive class: score >= `--positive-min-score`) and writes a classifier
directory (see `data_pipeline.curation.classifier`): the forest (skops), metadata with held-out
precision / recall / F1 / ROC AUC, and a held-out score histogram PNG.

Labels whose score is null (annotation failures) are skipped and counted; a malformed label line,
a score outside 1-5, a repeated id or a labelled id missing from the input stops with an error
naming it, before any embedding.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from typing import Sequence

import numpy as np

from data_pipeline import records
from data_pipeline.curation import classifier as classifier_lib
from data_pipeline.curation import score_histogram
from data_pipeline.embedder import DEFAULT_SPEC, load_embedder
from evaluation.problems import read_jsonl

_MAX_NAMED_IDS = 10


def read_scores(labels_path: str) -> tuple[dict[str, int], int]:
    """({id: score} of the scored labels, number of labels with a null score)."""
    scores: dict[str, int] = {}
    failures = 0
    for lineno, label in read_jsonl(labels_path):
        where = f"{labels_path}:{lineno}"
        if not isinstance(label.get("id"), str):
            raise ValueError(f"{where}: expected an object with a string 'id'")
        if label["id"] in scores:
            raise ValueError(f"{where}: id {label['id']!r} labelled twice")
        score = label.get("score")
        if score is None:
            failures += 1
            continue
        try:
            scores[label["id"]] = classifier_lib.check_score(score)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
    if not scores:
        raise ValueError(f"{labels_path}: no scored labels")
    return scores, failures


def labelled_texts(scores: dict[str, int], input_pattern: str) -> dict[str, str]:
    """{id: text} for every labelled id, read from the record shards; every id must be there."""
    texts = {r["id"]: r["text"] for r in records.read_records(input_pattern) if r["id"] in scores}
    missing = sorted(set(scores) - set(texts))
    if missing:
        raise ValueError(f"{len(missing)} labelled ids are not in {input_pattern}: "
                         f"{missing[:_MAX_NAMED_IDS]}{' ...' if len(missing) > _MAX_NAMED_IDS else ''}")
    return texts


def train(labels_path: str, input_pattern: str, out_dir: str, *, embedder_spec: str = DEFAULT_SPEC,
          positive_min_score: int = classifier_lib.DEFAULT_POSITIVE_MIN_SCORE,
          threshold: float = classifier_lib.DEFAULT_THRESHOLD, test_fraction: float = 0.25, seed: int = 0,
          n_estimators: int = 300, batch_size: int = 32) -> classifier_lib.Classifier:
    """Trains, evaluates on the held-out split and writes the classifier directory `out_dir`."""
    from sklearn.model_selection import train_test_split

    scores, failures = read_scores(labels_path)
    texts = labelled_texts(scores, input_pattern)
    ids = sorted(scores)
    y = classifier_lib.positive_labels([scores[i] for i in ids], positive_min_score)
    if min(y.sum(), len(y) - y.sum()) < 2:
        raise ValueError(f"need at least 2 labels on each side of score {positive_min_score}; "
                         f"have {int(y.sum())} positive and {int(len(y) - y.sum())} negative")
    embedder = load_embedder(embedder_spec)
    vectors = embedder.embed([texts[i] for i in ids], batch_size=batch_size)
    train_index, test_index = train_test_split(np.arange(len(ids)), test_size=test_fraction,
                                               stratify=y, random_state=seed)
    forest = classifier_lib.fit_forest(vectors[train_index], y[train_index], seed=seed,
                                       n_estimators=n_estimators)
    heldout_scores = classifier_lib.positive_probability(forest, vectors[test_index])
    metrics = classifier_lib.heldout_metrics(y[test_index], heldout_scores, threshold)
    metadata = classifier_lib.build_metadata(
        embedder=classifier_lib.embedder_metadata(embedder, embedder_spec), threshold=threshold,
        positive_min_score=positive_min_score,
        counts=dict(classifier_lib.label_counts([scores[i] for i in ids], y), annotation_failures=failures),
        metrics=metrics, labels_file=os.path.basename(labels_path),
        split={"seed": seed, "test_fraction": test_fraction, "train": int(len(train_index)),
               "heldout": int(len(test_index)), "heldout_ids": [ids[i] for i in test_index]})
    classifier = classifier_lib.Classifier(forest, metadata)
    classifier_lib.save_classifier(classifier, out_dir)
    positives = heldout_scores[y[test_index] == 1]
    negatives = heldout_scores[y[test_index] == 0]
    score_histogram.write_png(
        os.path.join(out_dir, classifier_lib.HISTOGRAM_FILE),
        {f"score >= {positive_min_score}": score_histogram.histogram_counts(positives),
         f"score < {positive_min_score}": score_histogram.histogram_counts(negatives)},
        threshold, f"held-out scores ({len(test_index)} files), ROC AUC {metrics['roc_auc']:.3f}")
    return classifier


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m data_pipeline.classify",
        description="Train the educational-value classifier (embeddings + random forest).")
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser(
        "train", help="train on labels + record shards; write a classifier directory",
        description="Reads LABELS (JSONL: id, score 1-5 per line; null scores are skipped) and the "
                    "record shards IN (file, directory or glob, local or gs://) holding those ids. "
                    "Writes MODEL_DIR: model.skops (the forest), metadata.json (embedder, threshold, "
                    "label counts, held-out precision/recall/F1/ROC AUC, library versions) and "
                    "histogram.png (held-out scores by class).")
    train_parser.add_argument("--labels", required=True, help="labels JSONL")
    train_parser.add_argument("--input", required=True, help="record shards holding the labelled ids")
    train_parser.add_argument("--out", required=True, help="classifier directory to write")
    train_parser.add_argument("--embedder", default=DEFAULT_SPEC,
                              help="'default' (all-MiniLM-L6-v2), a local sentence-transformers "
                                   "directory, or checkpoint:PATH (a phi1_jax checkpoint)")
    train_parser.add_argument("--positive-min-score", type=int,
                              default=classifier_lib.DEFAULT_POSITIVE_MIN_SCORE,
                              help="scores at or above this are the educational class (default 3)")
    train_parser.add_argument("--threshold", type=float, default=classifier_lib.DEFAULT_THRESHOLD,
                              help="keep files whose score is at or above this (default 0.5)")
    train_parser.add_argument("--test-fraction", type=float, default=0.25, help="held-out share")
    train_parser.add_argument("--seed", type=int, default=0)
    train_parser.add_argument("--trees", type=int, default=300, help="random forest size")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        classifier = train(args.labels, args.input, args.out, embedder_spec=args.embedder,
                           positive_min_score=args.positive_min_score, threshold=args.threshold,
                           test_fraction=args.test_fraction, seed=args.seed, n_estimators=args.trees)
    except (ValueError, FileNotFoundError) as error:
        train_parser.error(str(error))
    print(json.dumps({"out": args.out, "label_counts": classifier.metadata["label_counts"],
                      "heldout_metrics": classifier.metadata["heldout_metrics"]}, indent=2))


if __name__ == "__main__":
    main()
