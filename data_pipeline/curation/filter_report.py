"""The filter stage's report (DESIGN.md: "score all files" -> "keep top files"): counts, kept
fraction, the score histogram and bad inputs by reason. One accumulator serves the single-process
path and Beam (as the state of a CombineFn), so both write the same report for the same input.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Iterable

import tensorflow as tf

from data_pipeline.curation import score_histogram
from data_pipeline.curation.filter_inputs import BAD_REASONS, BadInput

REPORT_FILE = "report.json"
HISTOGRAM_FILE = "histogram.png"
# Enough locations per reason to find the files; the count says how many there were.
_EXAMPLES_PER_REASON = 20


@dataclasses.dataclass
class FilterReport:
    scored: int = 0
    kept: int = 0
    histogram: list[int] = dataclasses.field(default_factory=lambda: [0] * score_histogram.BINS)
    bad: dict[str, int] = dataclasses.field(default_factory=lambda: {r: 0 for r in BAD_REASONS})
    bad_examples: dict[str, list[str]] = dataclasses.field(default_factory=lambda: {r: [] for r in BAD_REASONS})

    def add_score(self, score: float, kept: bool) -> None:
        self.scored += 1
        self.kept += int(kept)
        self.histogram[score_histogram.bin_index(score)] += 1

    def add_bad(self, bad: BadInput) -> None:
        self.bad[bad.reason] += 1
        self.bad_examples[bad.reason].append(f"{bad.location}: {bad.detail}" if bad.detail else bad.location)
        # Sorted, so the kept examples do not depend on the order workers finished in.
        self.bad_examples[bad.reason] = sorted(self.bad_examples[bad.reason])[:_EXAMPLES_PER_REASON]

    def merge(self, others: Iterable["FilterReport"]) -> "FilterReport":
        for other in others:
            self.scored += other.scored
            self.kept += other.kept
            self.histogram = [a + b for a, b in zip(self.histogram, other.histogram)]
            for reason in BAD_REASONS:
                self.bad[reason] += other.bad[reason]
                self.bad_examples[reason] = sorted(self.bad_examples[reason] + other.bad_examples[reason]
                                                   )[:_EXAMPLES_PER_REASON]
        return self

    def to_json(self, **context) -> dict:
        bad_total = sum(self.bad.values())
        return dict(context, inputs=self.scored + bad_total, scored=self.scored, kept=self.kept,
                    kept_fraction=self.kept / self.scored if self.scored else 0.0,
                    score_histogram={"bins": score_histogram.BINS, "counts": self.histogram},
                    bad_inputs={"total": bad_total, "by_reason": self.bad, "examples": self.bad_examples})

    def write(self, out_dir: str, threshold: float, **context) -> dict:
        """Writes report.json and histogram.png into `out_dir`; returns the report."""
        report = self.to_json(threshold=threshold, **context)
        with tf.io.gfile.GFile(f"{out_dir.rstrip('/')}/{REPORT_FILE}", "w") as f:
            json.dump(report, f, indent=2, sort_keys=True)
            f.write("\n")
        score_histogram.write_png(f"{out_dir.rstrip('/')}/{HISTOGRAM_FILE}", {"scored files": self.histogram},
                                  threshold, f"{self.kept} of {self.scored} files kept")
        return report
