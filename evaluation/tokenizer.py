"""The text <-> token ids adapter for the checkpoint front-end (DESIGN.md data flow: "sample with KV
cache"): finds the tokenizer a checkpoint carries and loads it through the data pipeline's seqio
vocabularies, the same ones training tokenized with."""

from __future__ import annotations

import glob
import os
from typing import Optional

import seqio

from data_pipeline.vocabularies import load_vocabulary


def tokenizer_file(path: str) -> str:
    """The vocabulary file in a tokenizer directory (`tokenizer.json` preferred, else a
    SentencePiece `*.model`), or `path` itself when it names such a file."""
    if os.path.isfile(path):
        return path
    if os.path.isfile(os.path.join(path, "tokenizer.json")):
        return os.path.join(path, "tokenizer.json")
    models = sorted(glob.glob(os.path.join(path, "*.model")))
    if not models:
        raise FileNotFoundError(f"no tokenizer.json or SentencePiece *.model in {path}")
    return models[0]


def load(path: Optional[str]) -> seqio.Vocabulary:
    """The vocabulary at `path` (file or directory), or the SentencePiece model shipped with the
    data pipeline when `path` is None, as training uses by default."""
    return load_vocabulary(tokenizer_file(path) if path else "")


def decode_continuation(vocabulary: seqio.Vocabulary, prompt_ids: list[int], new_ids: list[int]) -> str:
    """The text the new tokens add after the prompt. Decoding them together with the prompt keeps
    word boundaries (SentencePiece drops a leading space when a piece is decoded on its own)."""
    prompt_text = vocabulary.decode(prompt_ids)
    full_text = vocabulary.decode(list(prompt_ids) + list(new_ids))
    if full_text.startswith(prompt_text):
        return full_text[len(prompt_text):]
    return vocabulary.decode(new_ids)
