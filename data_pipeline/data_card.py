"""The data card of a data recipe run (`data_pipeline.recipe`): OUTPUT_ROOT/data_card/DATA_CARD.md
and its PNGs, read from the stages' manifests and their own reports, nothing recomputed but token
counts where no seqio cache holds them.

It shows tokens per source beside the paper's (arXiv 2306.11644: about 6B tokens of filtered code,
under 1B of synthetic textbook, about 180M of exercises), the filter's kept fraction and score
histogram, the dedup clusters, decontamination hits per benchmark problem and method, the
exercises' pass rate in the sandbox, and time and cost per stage.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

import ml_collections
import tensorflow as tf

from data_pipeline import manifest, records
from data_pipeline import recipe_stages as stages

PAPER_TOKENS = {"stack": 6e9, "textbook": 1e9, "exercises": 1.8e8}
PAPER_NOTE = {"stack": "about 6B (filtered code)", "textbook": "under 1B", "exercises": "about 180M"}
CARD_DIR = "data_card"
_MAX_LISTED_PROBLEMS = 20


def _read_json(path: str) -> Optional[dict]:
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f)


_STAGE_OF_SOURCE = {"stack": "decontaminate", "textbook": "textbook", "exercises": "exercises"}


def _cached_tokens(config: ml_collections.ConfigDict, sources: dict[str, str]) -> dict[str, int]:
    """Tokens per source summed over the splits of the seqio cache's stats, found under the Task
    names the cache job gave them."""
    from data_pipeline.seqio_data import tasks

    cache = stages.stage_dir(config.output_root, "cache")
    out: dict[str, int] = {}
    for mixture in stages.mixtures(config):
        for source, name in tasks.task_names(mixture, config.cache.vocabulary, sources).items():
            for path in tf.io.gfile.glob(f"{cache}/{name}/stats.*.json"):
                out[source] = out.get(source, 0) + int(_read_json(path).get("targets_tokens", 0))
    return out


def source_sizes(config: ml_collections.ConfigDict, manifests: dict[str, dict]) -> dict[str, dict[str, Any]]:
    """{source: {"records", "tokens", "tokens_from"}} of the recipe's outputs: records as the
    stages' manifests counted them, tokens from the seqio cache's stats, or, with no cache,
    tokenized here one record at a time."""
    sources = stages.training_sources(config, config.output_root)
    cached = _cached_tokens(config, sources)
    sizes = {}
    for source, pattern in sources.items():
        if source in cached:
            tokens, how = cached[source], "seqio cache stats"
        else:
            from data_pipeline.seqio_data.vocabularies import load_vocabulary, vocabulary_file

            vocabulary = load_vocabulary(vocabulary_file(config.cache.vocabulary))
            tokens = sum(len(vocabulary.encode(r["text"])) for r in records.read_records(pattern))
            how = "tokenized for this card"
        sizes[source] = {"records": manifests[_STAGE_OF_SOURCE[source]]["counts"]["records"], "tokens": tokens,
                         "tokens_from": how}
    return sizes


def _stage_reports(root: str) -> dict[str, Any]:
    d = lambda name, *parts: os.path.join(stages.stage_dir(root, name), *parts)  # noqa: E731
    return {
        "classifier": _read_json(d("classify", "metadata.json")),
        "annotate": _read_json(d("annotate", "labels.report.json")),
        "filter": _read_json(d("filter", "report.json")),
        "dedup": {"code": _read_json(d("dedup", "dedup_report.json")),
                  "textbook": _read_json(d("textbook", "work", "dedup", "dedup_report.json")),
                  "exercises": _read_json(d("exercises", "work", "dedup", "dedup_report.json"))},
        "decontamination": {
            "code": _read_json(d("decontaminate", "decontamination.json")),
            "textbook": _read_json(d("textbook", "decontamination.json"))
            or _read_json(d("textbook", "report", "decontamination.json")),
            "exercises": _read_json(d("exercises", "decontamination.json"))
            or _read_json(d("exercises", "report", "decontamination.json"))},
        "synthesis": {kind: _read_json(d(kind, "report", "report.json")) for kind in ("textbook", "exercises")},
    }


def exercise_pass_rate(synthesis: Optional[dict]) -> Optional[dict]:
    """Of the exercises that reached the sandbox, how many passed their own tests."""
    if not synthesis:
        return None
    rejected = synthesis.get("rejected", {})
    failed = rejected.get("tests failed", 0) + rejected.get("tests timed out", 0)
    after_sandbox = ("duplicate", "contaminated", "dropped by dedup", "dropped by decontaminate")
    passed = synthesis.get("kept", 0) + sum(rejected.get(r, 0) for r in after_sandbox)
    total = passed + failed
    return {"sandboxed": total, "passed": passed, "pass_rate": passed / total if total else None}


def _grouped_bars(groups: list[str], series: dict[str, list[float]], ylabel: str, title: str, path: str,
                  log: bool = False) -> None:
    """One bar per (group, series), the series side by side within each group."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.3))
    width = 0.8 / max(len(series), 1)
    for i, (label, values) in enumerate(series.items()):
        ax.bar([x + i * width for x in range(len(groups))], values, width, label=label)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(groups))], groups)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _plot_tokens(sizes: dict, path: str) -> None:
    names = list(sizes)
    _grouped_bars(names, {"this run": [max(sizes[n]["tokens"], 1) for n in names],
                          "phi-1 paper": [PAPER_TOKENS[n] for n in names]},
                  "tokens", "tokens per source", path, log=True)


def _plot_decontamination(reports: dict, path: str) -> None:
    present = {k: v for k, v in reports.items() if v}
    methods = sorted({m for r in present.values() for m in r["dropped_by_method"]})
    _grouped_bars(list(present), {m: [r["dropped_by_method"].get(m, 0) for r in present.values()] for m in methods},
                  "records dropped", "decontamination hits per method", path)


def _table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    return (["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
            + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def _fmt(value: Optional[float], digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def render(config: ml_collections.ConfigDict, sizes: dict, reports: dict, manifests: dict,
           command: Optional[str]) -> str:
    code = manifests["code_input"]["code_version"]
    commit = f", git commit {code['git_commit'][:12]}" if "git_commit" in code else ""
    lines = ["# Data card", "",
             *([f"Made by `{command}`.", ""] if command else []),
             f"Output root `{config.output_root}`; stage code sha256 {code['data_pipeline_sha256'][:12]}{commit}.", "",
             "## Tokens per source", "", "![tokens per source](tokens.png)", ""]
    lines += _table(["source", "records", "tokens", "counted by", "phi-1 paper"],
                    [[s, v["records"], f"{v['tokens']:,}", v["tokens_from"], PAPER_NOTE[s]] for s, v in sizes.items()])
    f = reports["filter"]
    lines += ["", "## Filter", "",
              f"{f['kept']} of {f['scored']} scored files kept ({f['kept_fraction']:.1%}) at threshold "
              f"{f['threshold']}; {f['bad_inputs']['total']} bad inputs {f['bad_inputs']['by_reason']}. "
              f"Classifier: {f['classifier']}, embedder `{f['embedder']}`.", "", "![filter scores](filter_histogram.png)"]
    if reports["classifier"]:
        metrics = reports["classifier"]["heldout_metrics"]
        lines += ["", "Classifier held-out metrics: " + ", ".join(f"{k} {_fmt(v)}" for k, v in metrics.items()
                                                               if isinstance(v, float))]
    lines += ["", "## Dedup", ""]
    lines += _table(["data", "records read", "kept", "exact dropped", "near dropped", "clusters"],
                    [[k, r["records_read"], r["kept"], r["dropped"]["exact"], r["dropped"]["near"], r["clusters"]]
                     for k, r in reports["dedup"].items() if r])
    lines += ["", "## Decontamination", "", "![decontamination](decontamination.png)", ""]
    lines += _table(["data", "benchmarks (problems)", "records read", "dropped", "by method"],
                    [[k, r["benchmarks"], r["records_read"], r["dropped"], r["dropped_by_method"]]
                     for k, r in reports["decontamination"].items() if r])
    hits = [[k, bench, task, row["records"], {m: n for m, n in row["by_method"].items() if n}]
            for k, r in reports["decontamination"].items() if r
            for bench, problems in r["per_problem"].items() for task, row in problems.items() if row["records"]]
    lines += [""] + (["Problems matched (data, benchmark, task, records, hits by method):", ""]
                     + _table(["data", "benchmark", "task", "records", "by method"], hits[:_MAX_LISTED_PROBLEMS])
                     + (["", f"... and {len(hits) - _MAX_LISTED_PROBLEMS} more"] if len(hits) > _MAX_LISTED_PROBLEMS else [])
                     if hits else ["No benchmark problem matched any record."])
    rate = exercise_pass_rate(reports["synthesis"]["exercises"])
    lines += ["", "## Exercises in the sandbox", "",
              (f"{rate['passed']} of {rate['sandboxed']} generated exercises passed their own tests in the sandbox "
               f"(pass rate {_fmt(rate['pass_rate'])})." if rate else
               "Embedded exercises (no endpoint): verified against their asserts when the set was built.")]
    lines += ["", "## Stages", ""]
    costs = {"annotate": (reports["annotate"] or {}).get("client", {}).get("cost_usd"),
             **{k: (v or {}).get("cost_usd") for k, v in reports["synthesis"].items()}}
    lines += _table(["stage", "wall s", "cost USD", "outputs", "commands"],
                    [[name, m["wall_seconds"], _fmt(costs.get(name), 2) if costs.get(name) is not None else "-",
                      m["outputs"]["files"], "<br>".join(f"`{c}`" for c in m["commands"]) or "(nothing to run)"]
                     for name, m in manifests.items()])
    return "\n".join(lines) + "\n"


def write(config: ml_collections.ConfigDict, command: Optional[str] = None) -> str:
    """Writes OUTPUT_ROOT/data_card/ (DATA_CARD.md and its PNGs), naming `command` as what made
    it; returns the card's path."""
    root = config.output_root
    out = stages.stage_dir(root, CARD_DIR)
    tf.io.gfile.makedirs(out)
    manifests = {name: manifest.read_manifest(stages.stage_dir(root, name)) for name in stages.STAGE_NAMES}
    sizes = source_sizes(config, manifests)
    reports = _stage_reports(root)
    _plot_tokens(sizes, f"{out}/tokens.png")
    _plot_decontamination(reports["decontamination"], f"{out}/decontamination.png")
    tf.io.gfile.copy(f"{stages.stage_dir(root, 'filter')}/histogram.png", f"{out}/filter_histogram.png", overwrite=True)
    card = f"{out}/DATA_CARD.md"
    with tf.io.gfile.GFile(card, "w") as f:
        f.write(render(config, sizes, reports, manifests, command))
    with tf.io.gfile.GFile(f"{out}/card.json", "w") as f:
        json.dump({"sources": sizes, "exercise_sandbox": exercise_pass_rate(reports["synthesis"]["exercises"]),
                   "filter": {k: reports["filter"][k] for k in ("scored", "kept", "kept_fraction", "threshold")},
                   "stages": {n: {"wall_seconds": m["wall_seconds"]} for n, m in manifests.items()}}, f, indent=2)
    return card
