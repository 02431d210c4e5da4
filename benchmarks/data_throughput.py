"""Tokenize + split + pack throughput of data_pipeline.seqio_data.loader on the embedded default mixture,
against a plain Python loop over sentencepiece doing the same work, measured in the same run; and
the tokens per byte of the default vocabulary on the standard library.

    python benchmarks/data_throughput.py [--mixture embedded_code_textbook] [--seq-len 2048]
        [--batch-size 8] [--tokens 2000000]

Both sides read the same documents (the mixture's Tasks, in the same order), append EOS, split
into chunks of at most seq_len and pack rows with segment ids and positions; both count only real
(non-padding) tokens. The peer tokenizes one document at a time with `SentencePieceProcessor.encode`
and packs with Python lists; it reads each Task's shards in order without mixing, which can only
flatter it. With the default 2M tokens the standard library (about 10M tokens) is still in its
first epoch, so the loader really tokenizes what it delivers. A mixture smaller than the timed
tokens (e.g. embedded_code_exercises, ~20k tokens per epoch) is replayed from memory after its
first epoch, and the peer stops after one epoch: that ratio measures replay, not tokenization.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time

import ml_collections
import numpy as np

from data_pipeline import stdlib_source
from data_pipeline.seqio_data import loader, packing, tasks, vocabularies


def pipeline_tokens_per_second(mixture: str, seq_len: int, batch_size: int, tokens: int) -> float:
    config = ml_collections.ConfigDict(dict(mixture=mixture, vocabulary="", eval_split="validation",
                                            cache_dir=""))
    it = loader.make_train_iterator(config, seq_len=seq_len, batch_size=batch_size, seed=0)
    next(it)  # graph building and the first reads are start-up, not throughput
    done, start = 0, time.perf_counter()
    while done < tokens:
        done += int(next(it)["decoder_loss_weights"].sum())
    return done / (time.perf_counter() - start)


def _task_texts(source: tasks.RecordSource):
    for shard in source.shards:
        for record in source.records(shard, "train"):
            yield record["text"]


def _peer_documents(mixture: str):
    streams = [_task_texts(tasks.register_task(name, source).source)
               for source, name in tasks.task_names(mixture).items()]
    # Round-robin over the Tasks, one document each, like a mixture with equal draws.
    for group in itertools.zip_longest(*streams):
        yield from (text for text in group if text is not None)


def peer_tokens_per_second(mixture: str, seq_len: int, batch_size: int, tokens: int) -> float:
    sp = vocabularies.load_vocabulary("").tokenizer
    eos = sp.eos_id()
    documents = _peer_documents(mixture)
    next(documents)
    done, start = 0, time.perf_counter()
    row, segment, targets, segments, positions = [], 0, [], [], []
    for text in documents:
        ids = sp.encode(text) + [eos]
        for c in range(0, len(ids), seq_len):
            chunk = ids[c:c + seq_len]
            while chunk:
                space = seq_len - len(row)
                piece, chunk = chunk[:space], chunk[space:]
                segment += 1
                row += piece
                segments += [segment] * len(piece)
                positions += list(range(len(piece)))
                if len(row) == seq_len:
                    targets.append(row)
                    row, segment = [], 0
        if len(targets) >= batch_size:
            batch = np.array(targets[:batch_size], np.int32)
            seg = np.array(segments[:batch_size * seq_len], np.int32).reshape(batch_size, seq_len)
            pos = np.array(positions[:batch_size * seq_len], np.int32).reshape(batch_size, seq_len)
            done += int((packing.features(batch, seg, pos)["decoder_loss_weights"]).sum())
            targets = targets[batch_size:]
            segments, positions = segments[batch_size * seq_len:], positions[batch_size * seq_len:]
            if done >= tokens:
                break
    return done / (time.perf_counter() - start)


def stdlib_tokens_per_byte() -> tuple[float, int]:
    vocab = vocabularies.load_vocabulary("")
    texts = [stdlib_source.read_python_source(os.path.join(stdlib_source.stdlib_dir(), p))
             for p in stdlib_source.stdlib_files()]
    n_tokens = sum(map(len, vocab.encode_batch(texts)))
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    return n_tokens / n_bytes, n_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mixture", default="embedded_code_textbook")
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=2_000_000)
    args = parser.parse_args()
    work = (args.mixture, args.seq_len, args.batch_size, args.tokens)
    ours = pipeline_tokens_per_second(*work)
    peer = peer_tokens_per_second(*work)
    print(f"cpu cores: {os.cpu_count()}  mixture: {args.mixture}  seq_len: {args.seq_len}  "
          f"batch: {args.batch_size}  tokens timed: {args.tokens}")
    print(f"loader (seqio tasks, tf.data, packing): {ours:12,.0f} tokens/s")
    print(f"peer (Python loop over sentencepiece):  {peer:12,.0f} tokens/s")
    print(f"ratio loader / peer: {ours / peer:.2f}x")
    per_byte, n_bytes = stdlib_tokens_per_byte()
    print(f"default vocabulary on the standard library ({n_bytes / 1e6:.1f} MB): "
          f"{per_byte:.3f} tokens per byte ({1 / per_byte:.2f} bytes per token)")


if __name__ == "__main__":
    main()
