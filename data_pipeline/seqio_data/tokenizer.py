"""Trains the default code vocabulary: a SentencePiece BPE model for Python (the "tokenizer" stage
of DESIGN.md's command-line surface; its output is what `vocabularies.load_vocabulary` loads).

    python -m data_pipeline.seqio_data.tokenizer train --input SHARDS_OR_FILES [--input ...] \
        --vocab-size 4096 --out DIR [--max-mb 8]

The shipped model (`data_pipeline/embedded/tokenizer/python_4096.model`, 4096 pieces, the vocabulary
of `configs/tiny.py`) was made with

    python -m data_pipeline.seqio_data.tokenizer train --input stdlib \
        --input data_pipeline/embedded/textbook.jsonl --input data_pipeline/embedded/exercises.jsonl \
        --vocab-size 4096 --out data_pipeline/embedded/tokenizer

`--input` takes record shards (a file, directory or glob of `.jsonl`/`.tfrecord`/`.array_record`),
plain source files (`.py`, `.md`, `.txt`, or a directory of them), or the word `stdlib` (the running
interpreter's standard library). The model is written to `DIR/python_<N>.model` with its `.vocab`.

Settings and why: BPE with byte fallback (any byte is representable, so nothing maps to <unk>);
identity normalisation, no dummy prefix and no whitespace collapsing (code is whitespace-sensitive,
so decode(encode(x)) == x); pieces may span whitespace and contain runs of spaces (indentation
becomes single pieces like "▁▁▁▁return"); "\n" and "\t" are their own pieces; digits are split
(numbers do not bloat the vocabulary). Ids follow seqio: 0 = pad, 1 = EOS, 2 = unk, no BOS.
"""

from __future__ import annotations

import argparse
import io
import os
import random
from typing import Iterable, Iterator

import sentencepiece as spm
import tensorflow as tf

from data_pipeline import records, stdlib_source

# SentencePiece drops training "sentences" longer than this, so texts are cut at line boundaries.
MAX_SENTENCE_BYTES = 4096
_TEXT_SUFFIXES = (".py", ".md", ".txt", ".rst")


def input_texts(inputs: Iterable[str]) -> Iterator[str]:
    """Texts from each `--input` (see the module docstring), in a fixed order."""
    for spec in inputs:
        if spec == "stdlib":
            yield from (r["text"] for r in stdlib_source.stdlib_records())
            continue
        paths = (sorted(f"{spec.rstrip('/')}/{n}" for n in tf.io.gfile.listdir(spec))
                 if tf.io.gfile.isdir(spec) else sorted(tf.io.gfile.glob(spec)))
        if not paths:
            raise FileNotFoundError(f"--input {spec!r} matches no files")
        for path in paths:
            if path.endswith(_TEXT_SUFFIXES):
                with tf.io.gfile.GFile(path) as f:
                    yield f.read()
            elif not tf.io.gfile.isdir(path):
                yield from (r["text"] for r in records.read_shard(path))


def training_sentences(texts: Iterable[str], max_bytes: int, seed: int = 0) -> list[str]:
    """Texts cut into line-aligned pieces of at most MAX_SENTENCE_BYTES, newlines kept, then a
    seeded sample of about `max_bytes` of them (training time grows with the input)."""
    pieces: list[str] = []
    for text in texts:
        buf, size = [], 0
        for line in text.splitlines(keepends=True):
            # An over-long line is cut by characters (4 bytes at most per character).
            for start in range(0, len(line), MAX_SENTENCE_BYTES // 4):
                part = line[start:start + MAX_SENTENCE_BYTES // 4]
                n = len(part.encode("utf-8"))
                if size + n > MAX_SENTENCE_BYTES and buf:
                    pieces.append("".join(buf))
                    buf, size = [], 0
                buf.append(part)
                size += n
        if buf:
            pieces.append("".join(buf))
    random.Random(seed).shuffle(pieces)
    sample, total = [], 0
    for piece in pieces:
        if total >= max_bytes:
            break
        sample.append(piece)
        total += len(piece.encode("utf-8"))
    if not sample:
        raise ValueError("no training text: every input was empty")
    return sample


def train_model(sentences: list[str], vocab_size: int, num_threads: int = 2) -> bytes:
    """A serialized SentencePiece model trained with the settings in the module docstring."""
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=model, vocab_size=vocab_size,
        model_type="bpe", byte_fallback=True, character_coverage=1.0,
        normalization_rule_name="identity", remove_extra_whitespaces=False,
        add_dummy_prefix=False, split_by_whitespace=False, allow_whitespace_only_pieces=True,
        split_digits=True, user_defined_symbols=["\n", "\t"], max_sentence_length=MAX_SENTENCE_BYTES,
        max_sentencepiece_length=16, pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        input_sentence_size=0, num_threads=num_threads, minloglevel=2)
    return model.getvalue()


def train(inputs: list[str], vocab_size: int, out_dir: str, max_mb: float = 8.0,
          seed: int = 0) -> str:
    """Trains on `inputs` and writes `out_dir/python_<vocab_size>.model` (+ `.vocab`)."""
    sentences = training_sentences(input_texts(inputs), int(max_mb * 1e6), seed)
    proto = train_model(sentences, vocab_size)
    tf.io.gfile.makedirs(out_dir)
    path = os.path.join(out_dir, f"python_{vocab_size}.model")
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(proto)
    sp = spm.SentencePieceProcessor(model_proto=proto)
    with tf.io.gfile.GFile(path[: -len(".model")] + ".vocab", "w") as f:
        for i in range(sp.get_piece_size()):
            f.write(f"{sp.id_to_piece(i)!r}\t{sp.get_score(i)}\n")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m data_pipeline.seqio_data.tokenizer",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a SentencePiece BPE model for Python")
    t.add_argument("--input", action="append", required=True,
                   help="record shards, source files/dirs, or 'stdlib'; repeatable")
    t.add_argument("--vocab-size", type=int, required=True)
    t.add_argument("--out", required=True, help="output directory")
    t.add_argument("--max-mb", type=float, default=8.0, help="training sample size in MB")
    t.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(train(args.input, args.vocab_size, args.out, args.max_mb, args.seed))


if __name__ == "__main__":
    main()
