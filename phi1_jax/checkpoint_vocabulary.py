"""The vocabulary a checkpoint carries, as the text <-> token ids adapter of everything that samples
from or embeds with a checkpoint (DESIGN.md data flow: "sample with KV cache"; `phi1_jax.demo`,
`evaluation.generate_checkpoint`, `phi1_jax.checkpoint_embedder`): loads it (checked against the
record written with it, see `phi1_jax.checkpoint`) through the data pipeline's seqio vocabularies,
the same ones training tokenized with. Before issue 25 this was `evaluation/tokenizer.py`; it lives
beside the checkpoint code so that phi1_jax never imports evaluation."""

from __future__ import annotations

import logging
from typing import Optional

import seqio

from data_pipeline.seqio_data.vocabularies import load_vocabulary, vocabulary_file
from phi1_jax.checkpoint import (VocabularyMismatchError, check_fits, check_vocabulary, fingerprint,
                                 read_vocabulary)

log = logging.getLogger(__name__)


def for_checkpoint(checkpoint: str, model_vocab_size: int, override: Optional[str] = None) -> seqio.Vocabulary:
    """The vocabulary to encode prompts for, and decode samples of, the checkpoint at `checkpoint`:
    the one it carries, or `override` (a tokenizer file or directory) when given. Raises
    VocabularyMismatchError when it is not the vocabulary the model was trained with."""
    carried = read_vocabulary(checkpoint)
    if override:
        file = vocabulary_file(override)
        vocabulary = load_vocabulary(file)
        check_fits(vocabulary.vocab_size, model_vocab_size, file)
        if carried is not None and fingerprint(file) != carried[1].sha256:
            log.warning("--tokenizer %s is not the vocabulary %s that %s was trained with; using it as asked",
                        file, carried[0], checkpoint)
        return vocabulary
    if carried is None:
        raise VocabularyMismatchError(
            f"{checkpoint} carries no vocabulary (no tokenizer/vocabulary.json beside its steps); pass the one "
            "it was trained with: --tokenizer FILE_OR_DIR (a SentencePiece .model or a tokenizer.json)")
    file, record = carried
    check_vocabulary(file, record, model_vocab_size)
    return load_vocabulary(file)


def decode_continuation(vocabulary: seqio.Vocabulary, prompt_ids: list[int], new_ids: list[int]) -> str:
    """The text the new tokens add after the prompt. Decoding them together with the prompt keeps
    word boundaries (SentencePiece drops a leading space when a piece is decoded on its own)."""
    prompt_text = vocabulary.decode(prompt_ids)
    full_text = vocabulary.decode(list(prompt_ids) + list(new_ids))
    if full_text.startswith(prompt_text):
        return full_text[len(prompt_text):]
    return vocabulary.decode(new_ids)
