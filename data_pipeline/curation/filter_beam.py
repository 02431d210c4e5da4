"""The filter stage as an Apache Beam pipeline (DESIGN.md: "score all files (classifier)" ->
"keep top files", at The Stack's scale): DirectRunner locally, Dataflow / Flink / Spark through
the standard pipeline options with nothing else to change.

Files are planned into read units (record shards, Parquet row groups) and spread over workers;
each worker loads the embedder and classifier once (`DoFn.setup`), scores records in batches, and
the outputs are those of the single-process path in `data_pipeline.filter`: kept record shards
assigned by id, `scores.jsonl` and the report.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Optional, Sequence

import apache_beam as beam

from data_pipeline.curation import filter_inputs
from data_pipeline.curation.filter_inputs import BadInput, ReadUnit
from data_pipeline.curation.filter_report import FilterReport
from data_pipeline.curation.scoring import Scorer


class _ScoreBatches(beam.DoFn):
    """(record, score) for each record of a batch; the models are loaded once per worker."""

    def __init__(self, classifier_dir: Optional[str], embedder_spec: Optional[str], embed_batch_size: int):
        self._classifier_dir = classifier_dir
        self._embedder_spec = embedder_spec
        self._embed_batch_size = embed_batch_size
        self._scorer: Optional[Scorer] = None

    def setup(self) -> None:
        self._scorer = Scorer(self._classifier_dir, self._embedder_spec)

    def process(self, batch: Sequence[dict]) -> Iterable[tuple[dict, float]]:
        scores = self._scorer.score([r["text"] for r in batch], batch_size=self._embed_batch_size)
        return [(record, float(score)) for record, score in zip(batch, scores)]


class _ReportCombineFn(beam.CombineFn):
    """Sums (score, kept) pairs and BadInputs into one FilterReport."""

    def __init__(self, threshold: float):
        self._threshold = threshold

    def create_accumulator(self) -> FilterReport:
        return FilterReport()

    def add_input(self, report: FilterReport, item: Any) -> FilterReport:
        if isinstance(item, BadInput):
            report.add_bad(item)
        else:
            report.add_score(item, item >= self._threshold)
        return report

    def merge_accumulators(self, reports: Iterable[FilterReport]) -> FilterReport:
        first, *rest = reports
        return first.merge(rest)

    def extract_output(self, report: FilterReport) -> FilterReport:
        return report


def _read(item: ReadUnit | BadInput, max_bytes: int) -> Iterable[dict | BadInput]:
    return [item] if isinstance(item, BadInput) else filter_inputs.read_unit(item, max_bytes)


def build(pipeline: beam.Pipeline, files: Sequence[tuple[str, str]], out_dir: str, *,
          classifier_dir: Optional[str], embedder_spec: Optional[str], threshold: float, max_bytes: int,
          num_shards: int, batch_size: int, embed_batch_size: int, report_context: dict) -> None:
    """Adds the filter to `pipeline`: reads `files` ((path, format) pairs), writes into `out_dir`."""
    from data_pipeline import filter as filter_stage

    items = (pipeline
             | "Files" >> beam.Create(list(files))
             | "PlanUnits" >> beam.FlatMapTuple(filter_inputs.plan_units)
             | "Spread" >> beam.Reshuffle()
             | "Read" >> beam.FlatMap(_read, max_bytes))
    bad = items | "Bad" >> beam.Filter(lambda item: isinstance(item, BadInput))
    scored = (items
              | "Records" >> beam.Filter(lambda item: isinstance(item, dict))
              | "Batch" >> beam.BatchElements(min_batch_size=batch_size, max_batch_size=batch_size)
              | "Score" >> beam.ParDo(_ScoreBatches(classifier_dir, embedder_spec, embed_batch_size)))

    keyed_kept = (scored
                  | "Kept" >> beam.Filter(lambda pair: pair[1] >= threshold)
                  | "KeyByShard" >> beam.Map(
                      lambda pair: (filter_stage.kept_shard_index(pair[0]["id"], num_shards), pair[0])))
    # Every shard index, so shards that keep nothing are written too, as in the single process.
    shard_indices = pipeline | "ShardIndices" >> beam.Create([(i, None) for i in range(num_shards)])
    _ = ({"kept": keyed_kept, "index": shard_indices}
         | "GroupShards" >> beam.CoGroupByKey()
         | "WriteShards" >> beam.MapTuple(
             lambda index, grouped: filter_stage.write_kept_shard(out_dir, index, num_shards, grouped["kept"])))

    score_lines = (scored | "ScoreLines" >> beam.MapTuple(lambda record, score: filter_stage.score_line(record["id"], score)))
    bad_lines = (bad
                 | "BadWithId" >> beam.Filter(lambda b: b.id is not None)
                 | "BadLines" >> beam.Map(lambda b: filter_stage.score_line(b.id, None, b.reason)))
    _ = ((score_lines, bad_lines)
         | "AllLines" >> beam.Flatten()
         | "Json" >> beam.Map(lambda line: json.dumps(line, sort_keys=True))
         | "WriteScores" >> beam.io.WriteToText(f"{out_dir.rstrip('/')}/{filter_stage.SCORES_FILE}",
                                                num_shards=1, shard_name_template=""))

    _ = (((scored | "Scores" >> beam.MapTuple(lambda record, score: score)), bad)
         | "ReportItems" >> beam.Flatten()
         | "Report" >> beam.CombineGlobally(_ReportCombineFn(threshold))
         | "WriteReport" >> beam.Map(lambda report: report.write(out_dir, threshold, **report_context)))
