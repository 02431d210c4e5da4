"""Samples from a Hugging Face model directory (DESIGN.md data flow: "sample ... -> sandbox"), for
models converted with `phi1_jax.convert to-hf` or any causal LM transformers can load offline:
left-padded batches through `model.generate` (greedy or temperature/top-p), cut at the stop
sequences after decoding."""

from __future__ import annotations

import sys
from typing import Mapping

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from evaluation.generation import Settings, requests, to_samples
from evaluation.problems import Problem


def generate(model_dir: str, problems: Mapping[str, Problem], settings: Settings, *,
             progress: bool = False) -> list[dict]:
    """Sample records for `problems` from the model in `model_dir`."""
    tok = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True)
    model.eval()
    torch.manual_seed(settings.seed)
    reqs = requests(problems, settings)
    order = sorted(range(len(reqs)), key=lambda i: len(reqs[i].prompt))  # less padding per batch
    texts = [""] * len(reqs)
    starts = range(0, len(order), settings.batch_size)
    if progress:
        from tqdm import tqdm
        starts = tqdm(starts, desc="sampling", unit="batch", file=sys.stderr)
    sampling = {"do_sample": True, "temperature": settings.temperature, "top_p": settings.top_p} \
        if settings.temperature > 0 else {"do_sample": False}
    for start in starts:
        rows = order[start:start + settings.batch_size]
        batch = tok([reqs[row].prompt for row in rows], return_tensors="pt", padding=True)
        with torch.no_grad():
            out = model.generate(**batch, max_new_tokens=settings.max_new_tokens, pad_token_id=tok.pad_token_id,
                                 eos_token_id=tok.eos_token_id, **sampling)
        for row, tokens in zip(rows, out[:, batch["input_ids"].shape[1]:]):
            texts[row] = tok.decode(tokens, skip_special_tokens=True)
    return to_samples(reqs, texts, settings)
