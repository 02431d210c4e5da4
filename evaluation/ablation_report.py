"""The statistics, table and figure of the CPU-scale ablation (`evaluation.data_ablation`, with its
finetuning half `evaluation.finetune_effect`): the last step of that run, from its per-run results
to what a reader compares.

A run is one arm trained with one seed on one pool of files. Per arm: the mean and the sample
standard deviation of each metric over its runs. Between two arms: the differences paired on the
same seed and pool (so that the pool's difficulty and the seed's luck cancel), with their mean,
standard deviation and how many pairs agree in sign; a difference counts as larger than its spread
when its mean exceeds that standard deviation in size. With one run per arm there is no spread
(standard deviation 0.0) and no difference is called larger than it.
"""

from __future__ import annotations

import itertools
import statistics
from typing import Any, Iterable, Sequence

# Lower is better for the losses, higher for pass@1; differences are `to` minus `from`.
LOSSES = ("humaneval_solution_loss", "exercises_solution_loss")
COMPARED = LOSSES + ("humaneval_pass@1",)
AVERAGED = COMPARED + ("own_validation_loss", "train_seconds", "eval_seconds")
# The same in every run of an arm (equal steps and tokens, one vocabulary, one problem set).
CONSTANT = ("steps", "tokens", "humaneval_solution_tokens", "exercises_solution_tokens", "humaneval_problems",
            "mixture_rates")


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample standard deviation (0.0 for one value) and count of `values`."""
    values = [float(v) for v in values]
    return {"mean": round(statistics.fmean(values), 4),
            "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0, "n": len(values)}


def paired(differences: Sequence[float]) -> dict[str, Any]:
    """`spread` of paired differences, how many have the sign of their mean, and whether the mean
    is larger than the standard deviation."""
    summary = spread(differences)
    sign = 1 if summary["mean"] > 0 else -1
    summary["same_sign"] = sum(1 for d in differences if d * sign > 0)
    summary["larger_than_spread"] = summary["n"] > 1 and abs(summary["mean"]) > summary["std"]
    return summary


def arm_summaries(runs: Sequence[dict], arms: Sequence[str]) -> list[dict]:
    """Per arm: its constant fields, the mean of each averaged metric under the metric's own name
    and its standard deviation under `<metric>_std`."""
    out = []
    for arm in arms:
        mine = [r for r in runs if r["arm"] == arm]
        if not mine:
            continue
        summary = {"arm": arm, "runs": len(mine), **{k: mine[0][k] for k in CONSTANT}}
        for metric in AVERAGED:
            stats = spread([r[metric] for r in mine])
            summary[metric], summary[f"{metric}_std"] = stats["mean"], stats["std"]
        out.append(summary)
    return out


def differences(runs: Sequence[dict], arms: Sequence[str]) -> list[dict]:
    """Every pair of arms in order (`from` earlier in `arms`), each compared metric's paired
    differences over the (seed, pool) pairs both arms ran."""
    by_key = {(r["arm"], r["seed"], r["pool"]): r for r in runs}
    out = []
    for first, second in itertools.combinations(arms, 2):
        keys = sorted((s, p) for (a, s, p) in by_key if a == first and (second, s, p) in by_key)
        if not keys:
            continue
        entry: dict[str, Any] = {"from": first, "to": second, "pairs": len(keys)}
        for metric in COMPARED:
            entry[metric] = paired([by_key[(second, *k)][metric] - by_key[(first, *k)][metric] for k in keys])
        out.append(entry)
    return out


def _cell(summary: dict, metric: str) -> str:
    if summary["runs"] == 1:
        return str(summary[metric])
    digits = 1 if metric.endswith("_seconds") else 4  # wall times vary by seconds with the load
    return f"{summary[metric]:.{digits}f} ± {summary[f'{metric}_std']:.{digits}f}"


def table_lines(report: dict[str, Any]) -> list[str]:
    """The report as markdown: the arms (mean ± std over runs), the paired differences, and the
    finetuning effect when it ran."""
    columns = ("arm", "runs", "humaneval_solution_loss", "exercises_solution_loss", "humaneval_pass@1", "tokens",
               "train_seconds", "eval_seconds")
    lines = _rows(columns, ([str(a["runs"]) if c == "runs" else _cell(a, c) if c in AVERAGED else str(a[c])
                             for c in columns] for a in report["arms"]))
    if report["differences"] and report["arms"][0]["runs"] > 1:
        lines += ["", *_rows(("from", "to", "pairs", *COMPARED, "larger than spread"), (
            [d["from"], d["to"], str(d["pairs"]),
             *(f"{d[m]['mean']:+.4f} ± {d[m]['std']:.4f} ({d[m]['same_sign']}/{d[m]['n']})" for m in COMPARED),
             ", ".join(m for m in COMPARED if d[m]["larger_than_spread"]) or "none"]
            for d in report["differences"]))]
    finetune = report.get("finetune")
    if finetune:
        lines += ["", *_rows(("finetuned " + finetune["arm"], "before", "after", "after - before", "larger than spread"), (
            [metric, f"{s['before']['mean']:.4f} ± {s['before']['std']:.4f}",
             f"{s['after']['mean']:.4f} ± {s['after']['std']:.4f}",
             f"{s['difference']['mean']:+.4f} ± {s['difference']['std']:.4f} "
             f"({s['difference']['same_sign']}/{s['difference']['n']})", str(s["difference"]["larger_than_spread"])]
            for metric, s in finetune["summary"].items()))]
    return lines


def _rows(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns),
            *("| " + " | ".join(row) + " |" for row in rows)]


_COLOURS = {"unfiltered": "#d9822b", "filtered": "#9bc48a", "filtered_textbook": "#2f7d3b"}


def plot(report: dict[str, Any], path: str) -> None:
    """Top row: each arm's losses (bar: mean, error bar: standard deviation, dots: the runs) and
    the paired differences between arms. Bottom row, when finetuning ran: before and after it,
    each run a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    finetune = report.get("finetune")
    fig, axes = plt.subplots(2 if finetune else 1, 3, figsize=(12, 7.2 if finetune else 3.8), squeeze=False)
    names = [a["arm"] for a in report["arms"]]
    for ax, metric, title in zip(axes[0], LOSSES, ("HumanEval solutions (nats/token)", "exercise solutions (nats/token)")):
        means = [a[metric] for a in report["arms"]]
        ax.bar(names, means, yerr=[a[f"{metric}_std"] for a in report["arms"]], capsize=4,
               color=[_COLOURS.get(n, "grey") for n in names])
        for x, name in enumerate(names):
            values = [r[metric] for r in report["runs"] if r["arm"] == name]
            ax.plot([x] * len(values), values, "k.", markersize=4)
        low, high = min(r[metric] for r in report["runs"]), max(r[metric] for r in report["runs"])
        ax.set_ylim(low - 0.6 * (high - low) - 0.02, high + 0.4 * (high - low) + 0.02)  # the differences, not 0..5
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
    ax = axes[0][2]
    labels = [f"{d['from']}\n-> {d['to']}" for d in report["differences"]]
    for offset, metric in ((-0.2, "humaneval_solution_loss"), (0.2, "exercises_solution_loss")):
        ax.errorbar([i + offset for i in range(len(labels))], [d[metric]["mean"] for d in report["differences"]],
                    yerr=[d[metric]["std"] for d in report["differences"]], fmt="o", capsize=4,
                    label=metric.split("_")[0])
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_title("paired differences (nats/token, mean ± std)", fontsize=10)
    ax.legend(fontsize=7)
    if finetune:
        for ax, (metric, stats) in zip(axes[1], finetune["summary"].items()):
            for run in finetune["runs"]:
                ax.plot([0, 1], [run["before"][metric], run["after"][metric]], color="#bbbbbb", linewidth=0.8)
            ax.errorbar([0, 1], [stats["before"]["mean"], stats["after"]["mean"]],
                        yerr=[stats["before"]["std"], stats["after"]["std"]], fmt="o-", color="#2f7d3b", capsize=4)
            ax.set_xticks([0, 1], ["before finetuning", "after"])
            ax.set_xlim(-0.4, 1.4)
            ax.set_title(metric.replace("_", " "), fontsize=10)
    runs = report["arms"][0]["runs"]
    fig.suptitle(f"phi-1's two claims at CPU scale: {report['arms'][0]['tokens']:,} tokens per arm, {runs} run(s) "
                 f"per arm ({len(report['seeds'])} seed(s) x {report['pools']} pool(s))"
                 + (f"; {finetune['arm']} finetuned on exercises of other families" if finetune else ""), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
