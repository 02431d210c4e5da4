"""The seqio group: the code between record shards and training batches.

`tokenizer` (trains the SentencePiece vocabulary), `vocabularies` (loads one), `tasks` (seqio
Tasks and Mixtures; importing it registers the embedded default), `cache` (the Beam offline
cache), `packing` and `loader` (packed, resumable per-host batches: the training data
interface). They use the shared pieces at `data_pipeline/`'s top level (`sources`, `records`,
`stdlib_source`, the shipped data in `embedded/`), which never import them back.

These modules lived at `data_pipeline/` top level before issue 25; `python -m data_pipeline.cache`,
`python -m data_pipeline.tokenizer` and `import data_pipeline.{tasks,loader,vocabularies}` still
work through modules of that old path (each is this package's module under its old name).
"""
