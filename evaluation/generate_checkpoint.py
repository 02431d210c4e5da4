"""Samples from one of our checkpoints (DESIGN.md data flow: "sample with KV cache -> sandbox"):
the prompts are tokenized with the vocabulary the checkpoint carries, grouped into batches of
similar length, and decoded with `phi1_jax.sampling.generate` (batched, KV cache, greedy or
temperature/top-p, EOS; the `--n` copies of a prompt sit next to each other, so a batch prefills
each prompt once), one batch at a time on each local device in parallel (where the CPU is the
only device, `generate` itself decodes a batch as concurrent streams, one per core). The text is
cut at the stop sequences after decoding.

Batches and their seeds are fixed before they are handed to devices, so the samples do not depend
on how many devices there are.
"""

from __future__ import annotations

import concurrent.futures
import queue
import sys
from typing import Any, Mapping, Optional, Sequence

import jax

from evaluation import tokenizer
from evaluation.generation import Settings, requests, to_samples
from evaluation.problems import InputError, Problem
from phi1_jax.checkpoint import VocabularyMismatchError, load_model
from phi1_jax.model_config import PhiConfig
from phi1_jax.sampling import decode_layout, generate as sample_tokens


def _batches(prompt_ids: Sequence[list[int]], batch_size: int) -> list[list[int]]:
    """Row indices per batch, similar lengths together so little of each batch is padding."""
    order = sorted(range(len(prompt_ids)), key=lambda row: len(prompt_ids[row]))
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def generate_tokens(config: PhiConfig, params: Any, prompt_ids: Sequence[list[int]], settings: Settings, *,
                    eos_id: Optional[int], devices: Optional[Sequence[jax.Device]] = None,
                    progress: bool = False) -> list[list[int]]:
    """New token ids for every prompt, batches spread over `devices` (default: all local ones)."""
    devices = list(devices or jax.local_devices())
    config, params = decode_layout(config, params)  # once, not per batch
    batches = _batches(prompt_ids, settings.batch_size)
    pending: queue.Queue = queue.Queue()
    for index, rows in enumerate(batches):
        pending.put((index, rows))
    outputs: list[Optional[list[int]]] = [None] * len(prompt_ids)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(batches), desc="sampling", unit="batch", file=sys.stderr)

    def drain(device: jax.Device) -> None:
        local_params = jax.device_put(params, device)
        while True:
            try:
                index, rows = pending.get_nowait()
            except queue.Empty:
                return
            with jax.default_device(device):
                new = sample_tokens(config, local_params, [prompt_ids[row] for row in rows],
                                    max_new_tokens=settings.max_new_tokens, temperature=settings.temperature,
                                    top_p=settings.top_p, eos_id=eos_id, seed=settings.seed + index)
            for row, tokens in zip(rows, new):
                outputs[row] = tokens
            if bar is not None:
                bar.update()

    try:
        with concurrent.futures.ThreadPoolExecutor(len(devices)) as pool:
            for done in [pool.submit(drain, device) for device in devices]:
                done.result()
    finally:
        if bar is not None:
            bar.close()
    return outputs


def generate(checkpoint: str, problems: Mapping[str, Problem], settings: Settings, *,
             tokenizer_dir: Optional[str] = None, progress: bool = False) -> list[dict]:
    """Sample records for `problems` from the checkpoint at `checkpoint`, whose vocabulary is the one
    it carries unless `tokenizer_dir` names another. A vocabulary that does not belong to the model
    is an InputError, so the command reports it in one line like any other bad input."""
    try:
        config, params = load_model(checkpoint)
        vocabulary = tokenizer.for_checkpoint(checkpoint, config.vocab_size, tokenizer_dir)
    except VocabularyMismatchError as error:
        raise InputError(str(error)) from error
    reqs = requests(problems, settings)
    # Keep prompt + completion within the positions the model was trained on (cut from the left).
    room = max(1, config.max_position_embeddings - settings.max_new_tokens)
    prompt_ids = [list(vocabulary.encode(request.prompt))[-room:] for request in reqs]
    new_ids = generate_tokens(config, params, prompt_ids, settings, eos_id=vocabulary.eos_id, progress=progress)
    texts = [tokenizer.decode_continuation(vocabulary, prompt, new) for prompt, new in zip(prompt_ids, new_ids)]
    return to_samples(reqs, texts, settings)
