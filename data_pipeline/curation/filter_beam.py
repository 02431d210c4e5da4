"""The filter stage as an Apache Beam pipeline (DESIGN.md: "score all files (classifier)" ->
"keep top files", at The Stack's scale): DirectRunner locally, Dataflow / Flink / Spark through
the standard pipeline options with nothing else to change.

Files are planned into read units (record shards, Parquet row groups) and spread over workers;
each worker loads the embedder and classifier once (`DoFn.setup`), scores records in batches, and
the outputs are those of the single-process path in `data_pipeline.filter`: kept record shards
assigned by id, `scores.jsonl` and the report.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Optional, Sequence

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
    """Sums scores and BadInputs into one FilterReport (a None item adds nothing)."""

    def __init__(self, threshold: float):
        self._threshold = threshold

    def create_accumulator(self) -> FilterReport:
        return FilterReport()

    def add_input(self, report: FilterReport, item: Any) -> FilterReport:
        if isinstance(item, BadInput):
            report.add_bad(item)
        elif item is not None:
            report.add_score(item, item >= self._threshold)
        return report

    def merge_accumulators(self, reports: Iterable[FilterReport]) -> FilterReport:
        first, *rest = reports
        return first.merge(rest)

    def extract_output(self, report: FilterReport) -> FilterReport:
        return report


def _read_batches(item: ReadUnit | BadInput, max_bytes: int, batch_size: int
                  ) -> Iterator[list[dict] | BadInput]:
    """A read unit's bad inputs one by one and its records in batches of `batch_size`. Batching
    here rather than with BatchElements: Beam's DaskRunner drops what a DoFn emits when a bundle
    finishes, which is where BatchElements emits its last batch of every bundle."""
    if isinstance(item, BadInput):
        yield item
        return
    batch = []
    for read in filter_inputs.read_unit(item, max_bytes):
        if isinstance(read, BadInput):
            yield read
            continue
        batch.append(read)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def build(pipeline: beam.Pipeline, files: Sequence[tuple[str, str]], out_dir: str, *,
          classifier_dir: Optional[str], embedder_spec: Optional[str], threshold: float, max_bytes: int,
          num_shards: int, batch_size: int, embed_batch_size: int, report_context: dict) -> None:
    """Adds the filter to `pipeline`: reads `files` ((path, format) pairs), writes into `out_dir`."""
    from data_pipeline import filter as filter_stage

    items = (pipeline
             | "Files" >> beam.Create(list(files))
             | "PlanUnits" >> beam.FlatMapTuple(filter_inputs.plan_units)
             | "Spread" >> beam.Reshuffle()
             | "Read" >> beam.FlatMap(_read_batches, max_bytes, batch_size))
    bad = items | "Bad" >> beam.Filter(lambda item: isinstance(item, BadInput))
    scored = (items
              | "Batches" >> beam.Filter(lambda item: isinstance(item, list))
              | "Score" >> beam.ParDo(_ScoreBatches(classifier_dir, embedder_spec, embed_batch_size)))

    keyed_kept = (scored
                  | "Kept" >> beam.Filter(lambda pair: pair[1] >= threshold)
                  | "KeyByShard" >> beam.Map(
                      lambda pair: (filter_stage.kept_shard_index(pair[0]["id"], num_shards), pair[0])))
    # Every shard index, so shards that keep nothing are written too, as in the single process.
    shard_indices = pipeline | "ShardIndices" >> beam.Create([(i, None) for i in range(num_shards)])
    written_shards = ({"kept": keyed_kept, "index": shard_indices}
                      | "GroupShards" >> beam.CoGroupByKey()
                      | "WriteShards" >> beam.MapTuple(
                          lambda index, grouped: filter_stage.write_kept_shard(out_dir, index, num_shards, grouped["kept"])))

    score_lines = (scored | "ScoreLines" >> beam.MapTuple(lambda record, score: filter_stage.score_line(record["id"], score)))
    bad_lines = (bad
                 | "BadWithId" >> beam.Filter(lambda b: b.id is not None)
                 | "BadLines" >> beam.Map(lambda b: filter_stage.score_line(b.id, None, b.reason)))
    # One worker sorts the (id, score) lines, as the single process does, so the file's bytes do
    # not depend on the runner's order: about 60 bytes per file.
    written_scores = ((score_lines, bad_lines)
                      | "AllLines" >> beam.Flatten()
                      | "LinesInOnePlace" >> beam.Map(lambda line: (None, line))
                      | "GatherLines" >> beam.GroupByKey()
                      | "WriteScores" >> beam.MapTuple(lambda _, lines: filter_stage.write_scores(out_dir, lines)))

    # The report combines without a default (a side input, which Beam's DaskRunner computes by
    # scoring everything again); the one `None` item makes sure there is a report of nothing.
    written_report = (((scored | "Scores" >> beam.MapTuple(lambda record, score: score)), bad,
                       pipeline | "NoItem" >> beam.Create([None]))
                      | "ReportItems" >> beam.Flatten()
                      | "Report" >> beam.CombineGlobally(_ReportCombineFn(threshold)).without_defaults()
                      | "WriteReport" >> beam.Map(lambda report: report.write(out_dir, threshold, **report_context)))
    # One last step that depends on every write: the DaskRunner computes only the last step.
    _ = ((written_shards, written_scores, written_report | "ReportDone" >> beam.Map(lambda _: 0))
         | "EveryWrite" >> beam.Flatten())
