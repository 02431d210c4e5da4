"""Samples from one of our checkpoints (DESIGN.md data flow: "sample with KV cache -> sandbox"):
the prompts are tokenized with the vocabulary the checkpoint carries, grouped into batches of
similar length, and decoded with `phi1_jax.sampling.generate` (batched, KV cache, greedy or
temperature/top-p, EOS; the `--n` copies of a prompt sit next to each other, so a batch prefills
each prompt once). On a TPU or GPU host each batch is split over a data mesh of all the local
chips; on a CPU host one batch runs on each local device in parallel (where the CPU is the only
device, `generate` itself decodes a batch as concurrent streams, one per core). The text is cut
at the stop sequences after decoding.

Batches and their seeds are fixed before they are handed to devices, so the samples do not depend
on how many devices there are.
"""

from __future__ import annotations

import concurrent.futures
import functools
import queue
import sys
from typing import Any, Callable, Mapping, Optional, Sequence

import jax

from evaluation.generation import Settings, requests, to_samples
from evaluation.problems import InputError, Problem
from phi1_jax import checkpoint_vocabulary
from phi1_jax.checkpoint import VocabularyMismatchError, load_model
from phi1_jax.model_config import PhiConfig
from phi1_jax.sampling import decode_layout, generate as sample_tokens, host_mesh


def _batches(prompt_ids: Sequence[list[int]], batch_size: int) -> list[list[int]]:
    """Row indices per batch, similar lengths together so little of each batch is padding."""
    order = sorted(range(len(prompt_ids)), key=lambda row: len(prompt_ids[row]))
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


PLACEMENTS = ("auto", "mesh", "per-device")


def generate_tokens(config: PhiConfig, params: Any, prompt_ids: Sequence[list[int]], settings: Settings, *,
                    eos_id: Optional[int], devices: Optional[Sequence[jax.Device]] = None,
                    placement: str = "auto", progress: bool = False) -> list[list[int]]:
    """New token ids for every prompt, sampled on `devices` (default: all local ones).

    `placement` "mesh": one batch at a time over `sampling.host_mesh` of all the devices, so a TPU
    or GPU host's chips share each batch (what `phi1_jax.preflight` compiles as prefill and decode). "per-device": one batch per
    device at a time, in threads, each device with a full copy of the parameters. "auto": mesh on
    accelerators, per-device on a CPU host (its simulated devices share the same cores)."""
    devices = list(devices or jax.local_devices())
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
    if placement == "auto":
        placement = "per-device" if devices[0].platform == "cpu" else "mesh"
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
    sample = functools.partial(sample_tokens, config, max_new_tokens=settings.max_new_tokens,
                               temperature=settings.temperature, top_p=settings.top_p, eos_id=eos_id)

    def drain(sample_batch: Callable[[list[list[int]], int], list[list[int]]]) -> None:
        while True:
            try:
                index, rows = pending.get_nowait()
            except queue.Empty:
                return
            new = sample_batch([prompt_ids[row] for row in rows], settings.seed + index)
            for row, tokens in zip(rows, new):
                outputs[row] = tokens
            if bar is not None:
                bar.update()

    def on_device(device: jax.Device) -> Callable[[list[list[int]], int], list[list[int]]]:
        local_params = jax.device_put(params, device)

        def sample_batch(prompts: list[list[int]], seed: int) -> list[list[int]]:
            with jax.default_device(device):
                return sample(local_params, prompts, seed=seed)

        return sample_batch

    if placement == "mesh":
        mesh = host_mesh(devices)
        samplers = [lambda prompts, seed: sample(params, prompts, seed=seed, mesh=mesh)]
    else:
        samplers = [on_device(device) for device in devices]
    try:
        with concurrent.futures.ThreadPoolExecutor(len(samplers)) as pool:
            for done in [pool.submit(drain, sampler) for sampler in samplers]:
                done.result()
    finally:
        if bar is not None:
            bar.close()
    return outputs


def generate(checkpoint: str, problems: Mapping[str, Problem], settings: Settings, *,
             tokenizer_dir: Optional[str] = None, placement: str = "auto", progress: bool = False) -> list[dict]:
    """Sample records for `problems` from the checkpoint at `checkpoint`, whose vocabulary is the one
    it carries unless `tokenizer_dir` names another. A vocabulary that does not belong to the model
    is an InputError, so the command reports it in one line like any other bad input."""
    try:
        config, params = load_model(checkpoint)
        vocabulary = checkpoint_vocabulary.for_checkpoint(checkpoint, config.vocab_size, tokenizer_dir)
    except VocabularyMismatchError as error:
        raise InputError(str(error)) from error
    reqs = requests(problems, settings)
    # Keep prompt + completion within the positions the model was trained on (cut from the left).
    room = max(1, config.max_position_embeddings - settings.max_new_tokens)
    prompt_ids = [list(vocabulary.encode(request.prompt))[-room:] for request in reqs]
    new_ids = generate_tokens(config, params, prompt_ids, settings, eos_id=vocabulary.eos_id, placement=placement,
                              progress=progress)
    texts = [checkpoint_vocabulary.decode_continuation(vocabulary, prompt, new)
             for prompt, new in zip(prompt_ids, new_ids)]
    return to_samples(reqs, texts, settings)
