"""Every field of a data recipe config (`python -m data_pipeline.recipe --config=configs/data/X.py`),
declared once with its default, as `phi1_jax.default_config` does for training: configs/data/*.py
override these, and an override of an unknown field fails at once.

Empty strings mean "not set"; `placeholder` fields are optional numbers (None until set).
"""

from __future__ import annotations

import ml_collections
from ml_collections.config_dict import placeholder

from data_pipeline.cleaning import contamination, minhash
from data_pipeline.curation import classifier as classifier_lib
from data_pipeline.curation import filter_inputs
from data_pipeline.sources import SPLITS

SHIPPED = "shipped"


def get_default_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.output_root = ""  # every stage writes OUTPUT_ROOT/<stage>/ (local or gs://)
    config.inputs = ml_collections.ConfigDict(dict(
        # The Stack's Python Parquet files or record shards (file, directory, glob; comma-separated;
        # local or gs://), or "installed-python": the standard library and installed packages.
        code="",
        input_format="auto",
        max_files=600, pools=1, pool=0,  # installed-python only: its size and its disjoint pool
    ))
    config.llm = ml_collections.ConfigDict(dict(
        base_url="",  # any OpenAI-compatible API root; "" = the OpenAI API. Key: OPENAI_API_KEY
        model="",  # "" = no endpoint: shipped labels, embedded textbook and exercises
        cache_dir="",  # answers are cached here; "" = OUTPUT_ROOT/llm_cache (outlives reruns)
        concurrency=16, timeout=120.0, max_retries=8,
        prompt_price=0.0, completion_price=0.0,  # USD per million tokens, for the budgets and the card
        requests_per_minute=placeholder(float), tokens_per_minute=placeholder(float),
    ))
    config.annotate = ml_collections.ConfigDict(dict(
        labels="",  # "" = ask the LLM; "shipped" = data_pipeline/curation/labels_v1.jsonl
        num=1000, seed=0, max_attempts=3, max_tokens=200, budget_usd=placeholder(float),
    ))
    config.classify = ml_collections.ConfigDict(dict(
        classifier="",  # "" = train on the labels; "shipped" = the packaged classifier, no labels needed
        embedder="default", positive_min_score=classifier_lib.DEFAULT_POSITIVE_MIN_SCORE,
        threshold=classifier_lib.DEFAULT_THRESHOLD, test_fraction=0.25, seed=0, trees=300,
    ))
    config.filter = ml_collections.ConfigDict(dict(
        threshold=placeholder(float),  # None = the classifier's threshold
        num_shards=4, max_bytes=filter_inputs.DEFAULT_MAX_BYTES,
    ))
    config.dedup = ml_collections.ConfigDict(dict(
        threshold=minhash.DEFAULT_THRESHOLD, num_perm=minhash.DEFAULT_NUM_PERM, shingle_words=5,
    ))
    thresholds = contamination.Thresholds()
    config.decontaminate = ml_collections.ConfigDict(dict(
        # HumanEval always; these are more HumanEval- or MBPP-format problem files (comma-separated).
        benchmarks="",
        methods=",".join(contamination.METHODS), embedder="default",
        min_chars=thresholds.min_chars, ngram_threshold=thresholds.ngram_threshold, tau=thresholds.tau,
        ast_min_labels=thresholds.ast_min_labels, embedding_threshold=thresholds.embedding_threshold,
    ))
    synthesis = dict(num=100, seed=0, temperature=0.8, num_shards=1, budget_usd=placeholder(float),
                     max_tokens=placeholder(int))
    config.textbook = ml_collections.ConfigDict(synthesis)
    config.exercises = ml_collections.ConfigDict(dict(synthesis, sandbox_timeout=3.0,
                                                      sandbox_workers=placeholder(int)))
    config.cache = ml_collections.ConfigDict(dict(
        mixtures="code_textbook,code_exercises",  # "" = no seqio cache: training tokenizes on the fly
        vocabulary="",  # "" = the shipped SentencePiece model
        splits=",".join(SPLITS),
    ))
    # Apache Beam pipeline options for filter, dedup, decontaminate and the cache, e.g.
    # "--runner=DataflowRunner --project=P --region=R --temp_location=gs://B/tmp --setup_file=./setup.py".
    # "" = filter, dedup and decontaminate in this process; the cache on the DirectRunner.
    config.beam_options = ""
    # The training configs that the printed commands point at the outputs.
    config.training = ml_collections.ConfigDict(dict(pretrain="configs/phi1.py", finetune="configs/phi1_finetune.py"))
    return config
