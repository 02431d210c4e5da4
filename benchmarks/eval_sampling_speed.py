"""Tokens per second of our KV-cache sampler (`phi1_jax.sampling.generate`, what the checkpoint
front-end uses) against Hugging Face `generate` on the same tiny Phi model (HF weights converted
with `phi1_jax.convert.from_hf`), same batch, same prompts, greedy, on CPU, in the same run.

    .venv/bin/python benchmarks/eval_sampling_speed.py [--batch 8] [--prompt-len 64] [--new 128]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import jax
import numpy as np
import torch
from transformers import PhiForCausalLM

from evaluation.tiny_models import build_hf_model
from phi1_jax.convert import from_hf
from phi1_jax.sampling import generate


def best_of(repeats: int, function) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--prompt-len", type=int, default=64)
    parser.add_argument("--new", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as model_dir:
        build_hf_model(model_dir, hidden_size=args.hidden, num_layers=args.layers, num_heads=args.hidden // 64)
        hf = PhiForCausalLM.from_pretrained(model_dir).eval()
        config, params = from_hf(model_dir)
    params = jax.device_put(params, jax.devices()[0])
    prompts = np.random.default_rng(0).integers(1, config.vocab_size - 1, (args.batch, args.prompt_len))
    tokens = args.batch * args.new

    def ours() -> None:
        generate(config, params, prompts.tolist(), max_new_tokens=args.new)

    def theirs() -> None:
        with torch.no_grad():
            hf.generate(torch.tensor(prompts), attention_mask=torch.ones_like(torch.tensor(prompts)),
                        max_new_tokens=args.new, min_new_tokens=args.new, do_sample=False, pad_token_id=0)

    ours()  # compile once; a long evaluation reuses the compiled sampler
    theirs()
    ours_s, theirs_s = best_of(args.repeats, ours), best_of(args.repeats, theirs)
    print(f"tiny Phi: hidden {args.hidden}, {args.layers} layers, vocab {config.vocab_size}; batch {args.batch}, "
          f"prompt {args.prompt_len}, {args.new} new tokens, greedy, CPU ({torch.get_num_threads()} torch threads)")
    print(f"ours (jax KV cache):   {tokens / ours_s:9.1f} tokens/s ({ours_s:.3f} s)")
    print(f"HF generate (torch):   {tokens / theirs_s:9.1f} tokens/s ({theirs_s:.3f} s)")
    print(f"speed ratio ours / HF: {theirs_s / ours_s:.1f}x")


if __name__ == "__main__":
    main()
