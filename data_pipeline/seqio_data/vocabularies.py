"""The seqio Vocabularies that turn record text into token ids (the "seqio Tasks" stage of
DESIGN.md's data flow) and, for evaluation, ids back into text.

`load_vocabulary(spec)` is the one entry point: `""` is the SentencePiece model shipped in
`data_pipeline/embedded/tokenizer/`, a path ending in `.model` is any SentencePiece model, and a
path ending in `.json` is a Hugging Face `tokenizer.json` (e.g. codegen-350M-mono's, which the
released phi-1 weights use).

Both vocabularies round-trip exactly: `decode(encode(x)) == x` for any text. SentencePiece maps
spaces to U+2581 ("▁") internally, so a literal U+2581 in the input would come back as a space;
`CodeSentencePieceVocabulary` encodes that one character as its UTF-8 byte-fallback pieces, which
decode back to U+2581. Padding is id 0 (seqio's convention); for a GPT-2-style `tokenizer.json`
id 0 is also a real token ("!"), which is harmless because packing marks padding by segment id 0,
never by token id.
"""

from __future__ import annotations

import functools
import glob
import os
from typing import Sequence

import numpy as np
import seqio
import tensorflow as tf

DEFAULT_SPM_PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)), "embedded", "tokenizer",
                                "python_4096.model")
SPACE_SYMBOL = "\u2581"
# End-of-text names used by the tokenizer.json files we expect (GPT-2/codegen, Llama-style, BERT).
_HF_EOS_CANDIDATES = ("<|endoftext|>", "</s>", "<eos>", "[SEP]")


def _numpy_encode_tf(encode, s: tf.Tensor) -> tf.Tensor:
    """`encode` (str -> ids) as a graph op on a scalar string, for seqio's tokenize preprocessor."""
    def run(b) -> np.ndarray:
        # Inside tf.data the scalar arrives as bytes, eagerly as a 0-d object array.
        text = (b.item() if isinstance(b, np.ndarray) else b).decode("utf-8")
        return np.asarray(encode(text), dtype=np.int32)

    ids = tf.numpy_function(run, [s], tf.int32, stateful=False)
    ids.set_shape([None])
    return ids


class CodeSentencePieceVocabulary(seqio.SentencePieceVocabulary):
    """seqio's SentencePieceVocabulary with an exact round trip for every character."""

    @functools.cached_property
    def _space_symbol_ids(self) -> list[int]:
        return [self.tokenizer.piece_to_id(f"<0x{b:02X}>") for b in SPACE_SYMBOL.encode("utf-8")]

    def _encode(self, s: str) -> Sequence[int]:
        if SPACE_SYMBOL not in s:
            return self.tokenizer.EncodeAsIds(s)
        ids: list[int] = []
        for i, part in enumerate(s.split(SPACE_SYMBOL)):
            if i:
                ids.extend(self._space_symbol_ids)
            ids.extend(self.tokenizer.EncodeAsIds(part))
        return ids

    def encode_batch(self, texts: Sequence[str], num_threads: int = 0) -> list[list[int]]:
        """Many texts at once (SentencePiece's threaded batch encoder where no text needs the
        U+2581 treatment)."""
        plain = [t for t in texts if SPACE_SYMBOL not in t]
        encoded = iter(self.tokenizer.encode(plain, num_threads=num_threads or -1))
        return [self._encode(t) if SPACE_SYMBOL in t else next(encoded) for t in texts]

    def _encode_tf(self, s: tf.Tensor) -> tf.Tensor:
        # tf-text's SentencePiece op gives the same ids without holding the GIL, so tf.data can
        # tokenize on every core; only text containing U+2581 takes the Python path.
        return tf.cond(tf.strings.regex_full_match(s, f"(?s).*{SPACE_SYMBOL}.*"),
                       lambda: _numpy_encode_tf(self._encode, s),
                       lambda: self.tf_tokenizer.tokenize(s))


class HFTokenizerVocabulary(seqio.Vocabulary):
    """A seqio Vocabulary over a local Hugging Face `tokenizer.json` (tokenizers library)."""

    def __init__(self, path: str, eos_token: str | None = None):
        import tokenizers

        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"tokenizer file {path!r} does not exist")
        with tf.io.gfile.GFile(path) as f:
            self._tokenizer = tokenizers.Tokenizer.from_str(f.read())
        self._path = path
        names = (eos_token,) if eos_token else _HF_EOS_CANDIDATES
        ids = [self._tokenizer.token_to_id(n) for n in names]
        found = [i for i in ids if i is not None]
        if not found:
            raise ValueError(f"{path}: none of the end-of-text tokens {names} is in the vocabulary")
        self._eos_id = found[0]
        super().__init__(extra_ids=0)

    @property
    def tokenizer(self):
        return self._tokenizer

    @property
    def eos_id(self) -> int:
        return self._eos_id

    @property
    def unk_id(self) -> None:
        return None

    @property
    def bos_id(self) -> None:
        return None

    @property
    def _base_vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def _encode(self, s: str) -> Sequence[int]:
        return self._tokenizer.encode(s, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str], num_threads: int = 0) -> list[list[int]]:
        del num_threads  # the tokenizers library parallelises batches itself
        return [e.ids for e in self._tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def _decode(self, ids: Sequence[int]) -> str:
        # EOS decodes to nothing, as in SentencePiece; every other id (added tokens included)
        # keeps its text, so decode(encode(x)) == x.
        return self._tokenizer.decode([int(i) for i in ids if i != self._eos_id],
                                      skip_special_tokens=False)

    def _encode_tf(self, s: tf.Tensor) -> tf.Tensor:
        return _numpy_encode_tf(self._encode, s)

    def _decode_tf(self, ids: tf.Tensor) -> tf.Tensor:
        def run(batch: np.ndarray) -> np.ndarray:
            rows = batch.reshape(-1, batch.shape[-1]) if batch.ndim else batch.reshape(1, -1)
            out = [self._decode(row.tolist()).encode("utf-8") for row in rows]
            return np.asarray(out, dtype=object).reshape(batch.shape[:-1])

        text = tf.numpy_function(run, [ids], tf.string, stateful=False)
        text.set_shape(ids.shape[:-1])
        return text

    def __eq__(self, other) -> bool:
        return isinstance(other, HFTokenizerVocabulary) and other._path == self._path

    def __str__(self) -> str:
        return f"HFTokenizerVocabulary(path={self._path}, size={self.vocab_size}, eos={self.eos_id})"


def vocabulary_path(spec: str = "") -> str:
    """The file `config.data.vocabulary` names ("" = the shipped SentencePiece model)."""
    return spec or DEFAULT_SPM_PATH


def vocabulary_file(path: str) -> str:
    """`path` when it names a file, else the vocabulary file in directory `path` (`tokenizer.json`
    preferred, else a SentencePiece `*.model`)."""
    if os.path.isfile(path):
        return path
    if os.path.isfile(os.path.join(path, "tokenizer.json")):
        return os.path.join(path, "tokenizer.json")
    models = sorted(glob.glob(os.path.join(path, "*.model")))
    if not models:
        raise FileNotFoundError(f"no tokenizer.json or SentencePiece *.model in {path}")
    return models[0]


@functools.lru_cache(maxsize=None)
def load_vocabulary(spec: str = "") -> seqio.Vocabulary:
    """The vocabulary named by `config.data.vocabulary` (see the module docstring)."""
    path = vocabulary_path(spec)
    if path.endswith(".json"):
        return HFTokenizerVocabulary(path)
    if path.endswith(".model"):
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"SentencePiece model {path!r} does not exist")
        return CodeSentencePieceVocabulary(path)
    raise ValueError(f"vocabulary {spec!r}: expected '' (the shipped model), a SentencePiece "
                     "'.model' file or a Hugging Face 'tokenizer.json'")
