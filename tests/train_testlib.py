"""Shared pieces of the training tests: a tiny model config and packed batches cut from real Python
source (the interpreter's standard library), shaped like the seqio decoder features."""

from __future__ import annotations

import os

import numpy as np

from phi1_jax.default_config import get_default_config, load_config_file
from phi1_jax.model_config import PhiConfig

TINY_MODEL = dict(vocab_size=256, hidden_size=64, intermediate_size=256, num_layers=2, num_heads=4,
                  max_position_embeddings=64)


def tiny_model_config(**changes) -> PhiConfig:
    return PhiConfig(**{**TINY_MODEL, **changes})


def tiny_train_config(workdir: str, **train):
    """The default config tree shrunk to the tiny model and a few steps, writing to `workdir`."""
    config = get_default_config()
    config.model.update(TINY_MODEL)
    config.train.update({**dict(steps=4, global_batch_size=8, seq_len=32, lr=1e-2, warmup_steps=2,
                                eval_every=0, log_every=1), **train})
    config.checkpoint.update(dict(every_steps=1000, use_async=False))
    config.workdir = workdir
    return config


def stdlib_batches(num: int, batch_size: int, seq_len: int, vocab_size: int = 256) -> list[dict[str, np.ndarray]]:
    """`num` batches of two packed documents per row (real source files, bytes mod vocab)."""
    text = b"".join(open(os.path.join(os.path.dirname(os.__file__), name), "rb").read()
                    for name in ("os.py", "json/decoder.py", "textwrap.py"))
    tokens = np.frombuffer(text, np.uint8).astype(np.int32) % vocab_size
    half = (seq_len + 1) // 2
    segments = np.concatenate([np.full(half, 1), np.full(seq_len + 1 - half, 2)]).astype(np.int32)
    positions = np.concatenate([np.arange(half), np.arange(seq_len + 1 - half)]).astype(np.int32)
    batches = []
    for b in range(num):
        rows = [tokens[(b * batch_size + r) * (seq_len + 1):][: seq_len + 1] for r in range(batch_size)]
        window = np.stack(rows)
        # A target is only trained where it continues the same document as its input.
        same_doc = segments[:-1] == segments[1:]
        batches.append(dict(
            decoder_input_tokens=window[:, :-1],
            decoder_target_tokens=window[:, 1:],
            decoder_loss_weights=np.broadcast_to(same_doc, (batch_size, seq_len)).astype(np.int32),
            decoder_segment_ids=np.broadcast_to(segments[:-1], (batch_size, seq_len)).copy(),
            decoder_positions=np.broadcast_to(positions[:-1], (batch_size, seq_len)).copy(),
        ))
    return batches


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_CONFIG_FILE = os.path.join(REPO, "configs", "tiny.py")


def tiny_file_config():
    return load_config_file(TINY_CONFIG_FILE)


def run_config(workdir: str, **train):
    """configs/tiny.py on its real data (the embedded mixture), shrunk to a fast tiny model."""
    config = tiny_file_config()
    config.model.update(dict(TINY_MODEL, vocab_size=config.model.vocab_size))
    config.train.update({**dict(steps=12, global_batch_size=8, seq_len=32, warmup_steps=2, eval_every=0,
                                log_every=1), **train})
    config.checkpoint.update(dict(every_steps=3, keep=0))
    config.workdir = workdir
    return config


def overrides(config) -> list[str]:
    """The `--config.a.b=v` flags that turn configs/tiny.py into `config` (for subprocess runs)."""
    base = tiny_file_config()
    flags = []
    for section in ("model", "train", "checkpoint", "mesh"):
        for key, value in config[section].items():
            if base[section][key] != value:
                flags.append(f"--config.{section}.{key}={value}")
    return flags + [f"--config.workdir={config.workdir}"]
