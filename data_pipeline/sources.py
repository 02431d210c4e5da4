"""The data configuration's shared names and policies, declared once: the record sources, the
mixtures made of them, the splits and the tolerated share of malformed records. Read by the config
defaults (`phi1_jax.default_config`), the seqio Tasks (`seqio_data/tasks.py`), the loader, the record reader
and the cache job. No TensorFlow here, so the config can import it cheaply.
"""

from __future__ import annotations

# Record sources a user points at shards (`--config.data.sources.<name>=PATTERN`).
SOURCES = ("stack", "stackoverflow", "textbook", "exercises")
# The no-download stand-ins shipped with the code (standard library, embedded/*.jsonl).
EMBEDDED_SOURCES = ("embedded_stack", "embedded_textbook", "embedded_exercises")
MIXTURES = {
    "code_textbook": ("stack", "stackoverflow", "textbook"),
    "code_exercises": ("exercises",),
    "embedded_code_textbook": ("embedded_stack", "embedded_textbook"),
    "embedded_code_exercises": ("embedded_exercises",),
}
SPLITS = ("train", "validation")
# A shard with a larger share of malformed records stops the run (records.MalformedShardError).
MAX_BAD_FRACTION = 0.001
