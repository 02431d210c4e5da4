"""The full config tree with phi-1 pretraining defaults; `configs/*.py` start from it and override.

Configs are data (an ml_collections ConfigDict, see DESIGN.md "Config"): every field that any
stage reads is declared here once, so an override of an unknown field fails at once. The data
section's source names and malformed-record tolerance come from `data_pipeline.sources`, where
the data code reads them too. `load_config_file` loads a configs/*.py file (as `--config=` does)
without importing the trainer, so one config can build on another.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os

import ml_collections
from ml_collections import config_dict

from data_pipeline.sources import EMBEDDED_SOURCES, MAX_BAD_FRACTION, SOURCES
from phi1_jax.model_config import PhiConfig


def load_config_file(path: str) -> ml_collections.ConfigDict:
    """`get_config()` of a configs/*.py file, as `--config=path` would load it: `path:arg` calls
    `get_config(arg)` (e.g. `configs/ablation_350m.py:filtered`)."""
    path, _, arg = path.partition(".py:")
    path = path if path.endswith(".py") else path + ".py"
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg) if arg else module.get_config()


def get_default_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = ml_collections.ConfigDict(dataclasses.asdict(PhiConfig()))

    config.train = ml_collections.ConfigDict(dict(
        steps=36_000,
        schedule_steps=0,  # decay horizon; 0 = steps (the paper ran 24k steps of a 36k schedule)
        global_batch_size=1024,
        seq_len=2048,
        microbatches=1,
        lr=1e-3,
        warmup_steps=750,
        schedule="linear",  # linear | cosine | constant (after the warmup)
        end_lr_fraction=0.0,
        weight_decay=0.1,
        decay_biases_norms_embeddings=False,
        b1=0.9,
        b2=0.98,
        eps=1e-7,
        grad_clip=1.0,
        seed=0,
        eval_every=1000,
        eval_steps=10,
        log_every=10,
        init_from="",  # a checkpoint to start from (finetuning)
        peak_flops_per_device=0.0,  # 0: look up the detected device kind
    ))
    config.data = ml_collections.ConfigDict(dict(
        mixture="code_textbook",
        vocabulary="",  # "" = the shipped SentencePiece model; else a .model or tokenizer.json path
        eval_split="validation",
        cache_dir="",  # where `python -m data_pipeline.seqio_data.cache` wrote the tokenized mixture; "" = on the fly
        # Record shards (file, directory or glob, local or gs://) of the non-embedded mixtures.
        sources=ml_collections.ConfigDict(dict.fromkeys(SOURCES, "")),
        # Sampling rate per source of the mixture; unset = proportional to the source's tokens.
        mixture_rates=ml_collections.ConfigDict({
            source: config_dict.placeholder(float) for source in SOURCES + EMBEDDED_SOURCES}),
        max_bad_fraction=MAX_BAD_FRACTION,
    ))
    config.mesh = ml_collections.ConfigDict(dict(data=-1, fsdp=1, tensor=1))
    config.checkpoint = ml_collections.ConfigDict(dict(
        every_steps=1000, keep=3, permanent_every_steps=0, use_async=True,
        # Resume a checkpoint written by another number of hosts: parameters and optimizer state are
        # kept, the data restarts in a new order (not exact). Off: such a resume stops with an error.
        allow_host_count_change=False,
    ))
    config.workdir = "workdir"
    return config
