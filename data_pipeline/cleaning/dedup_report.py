"""The dedup stage's reports, assembled the same way by the single-process path and the Beam form:
`DIR/clusters.jsonl` (one cluster per line: cluster id, kept id, dropped ids with their estimated
similarity to the kept record and whether the match was exact or near) and `DIR/dedup_report.json`
(counts, MinHash settings, the keep rule and the bad input)."""

from __future__ import annotations

import json
from typing import Sequence

import tensorflow as tf

from data_pipeline.cleaning import clusters as clusters_lib
from data_pipeline.cleaning import intake, minhash

KEEP_RULE = ("per cluster keep the longest text; ties: smallest id, then first shard and line; "
             "clusters are connected components of exact (same sha256) and near "
             "(estimated Jaccard >= threshold) duplicate pairs")
CLUSTERS_FILE = "clusters.jsonl"
REPORT_FILE = "dedup_report.json"


def write_reports(out_dir: str, input_pattern: str, clusters: Sequence[clusters_lib.Cluster],
                  intakes: Sequence[intake.ShardIntake], config: minhash.MinHashConfig) -> dict:
    rows = clusters_lib.cluster_rows(clusters)
    with tf.io.gfile.GFile(f"{out_dir.rstrip('/')}/{CLUSTERS_FILE}", "w") as f:
        # One write, even of nothing: GFile creates the file only when written to.
        f.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    kinds = [kind for c in clusters for _, _, kind in c.dropped]
    usable = sum(i.records for i in intakes)
    report = {"input": input_pattern, "shards": len(intakes), "records_read": usable,
              "kept": usable - len(kinds),
              "dropped": {"exact": kinds.count("exact"), "near": kinds.count("near")},
              "clusters": len(rows), "minhash": config.as_report(), "keep_rule": KEEP_RULE,
              "bad_input": intake.bad_input_summary(intakes)}
    intake.write_json(f"{out_dir.rstrip('/')}/{REPORT_FILE}", report)
    return report


def read_report(out_dir: str) -> dict:
    return intake.read_json(f"{out_dir.rstrip('/')}/{REPORT_FILE}")
