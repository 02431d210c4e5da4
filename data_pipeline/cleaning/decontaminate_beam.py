"""The decontamination stage as an Apache Beam pipeline: one worker step per input shard runs the
same per-shard work as the single process (`decontamination_report.decontaminate_shard`, with the
benchmark index built once per worker in `setup`), and one final step assembles the same report
from the shards' outcomes (grouped under one key rather than a global combine, whose default value
is a side input that Beam's DaskRunner computes by running the shards again).
"""

from __future__ import annotations

from typing import Iterator, Optional, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from data_pipeline.cleaning import benchmarks, contamination, decontamination_report, intake


class _DecontaminateShard(beam.DoFn):
    def __init__(self, benchmark_paths, thresholds, methods, embedder_spec, out_dir, num_shards,
                 max_chars, fmt):
        self._benchmark_paths, self._thresholds = list(benchmark_paths), thresholds
        self._methods, self._embedder_spec = list(methods), embedder_spec
        self._out_dir, self._num_shards = out_dir, num_shards
        self._max_chars, self._fmt = max_chars, fmt
        self.checker = None

    def setup(self) -> None:
        self.checker = contamination.ContaminationChecker(
            benchmarks.load_benchmarks(self._benchmark_paths), self._thresholds, self._methods,
            self._embedder_spec)

    def process(self, indexed_path: tuple[int, str]
                ) -> Iterator[decontamination_report.ShardOutcome]:
        index, path = indexed_path
        yield decontamination_report.decontaminate_shard(
            path, index, self._num_shards, self._out_dir, self.checker, self._max_chars,
            self._fmt)


def run(input_pattern: str, paths: Sequence[str], out_dir: str, report_path: str,
        benchmark_paths: Sequence[Optional[str]], thresholds: contamination.Thresholds,
        methods: Sequence[str], embedder_spec: str, max_chars: int, fmt: str,
        beam_args: Sequence[str]) -> None:
    """Runs the pipeline; it writes the kept shards and the report."""
    shard_step = _DecontaminateShard(benchmark_paths, thresholds, methods, embedder_spec,
                                     out_dir, len(paths), max_chars, fmt)
    problems = benchmarks.load_benchmarks(benchmark_paths)
    ordered_methods = tuple(m for m in contamination.METHODS if m in methods)
    with beam.Pipeline(options=PipelineOptions(list(beam_args) or ["--runner=DirectRunner"])) as p:
        _ = (p
             | "shards" >> beam.Create(list(enumerate(paths)))
             | "decontaminate" >> beam.ParDo(shard_step)
             | "one place" >> beam.Map(lambda outcome: (None, outcome))
             | "all shards" >> beam.GroupByKey()
             | "report" >> beam.MapTuple(lambda _, outcomes: intake.write_json(
                 report_path, decontamination_report.build_report(
                     input_pattern, benchmark_paths, problems, ordered_methods, outcomes))))
