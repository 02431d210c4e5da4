"""Tokens per second of our KV-cache sampler (`phi1_jax.sampling.generate`, what the checkpoint
front-end uses) against Hugging Face `generate` on the same random Phi model (tiny by default; HF
weights converted with `phi1_jax.convert.from_hf`), same batch, same prompts, greedy, in the same run.

For every batch size and prompt length of the grid both samplers are warmed up once (our compile),
then timed in alternation, ours then HF, `--repeats` times, so a neighbour's load on a shared
machine falls on both. Each line gives the median tokens/s of each and the min-max of the
per-round ratios.

    .venv/bin/python benchmarks/eval_sampling_speed.py [--batches 1 8 32 128] [--prompt-lens 64 512] [--new 128]
        [--streams N | --cpu-devices N]

On a GPU, the phi-1-sized model in bfloat16 on both sides (JAX's CUDA build beside torch's):

    python benchmarks/eval_sampling_speed.py --hidden 2048 --layers 24 --dtype bfloat16 --torch-device cuda

By default JAX sees the whole CPU as one device, and `generate` decodes the rows in
`cpu_streams(batch)` groups at the same time (one per core); `--streams 1` measures one group, the
peer that shows what the streams give. `--cpu-devices N` splits the host into N XLA CPU devices
(one per core) instead and samples with the rows spread over them
(`generate(..., mesh=make_mesh({"data": -1}))`), as a TPU host or multi-GPU box does with its chips.

On a machine shared with other jobs, pin both to one core (`OMP_NUM_THREADS=1 taskset -c 1 ...`):
oversubscribed, torch's worker threads spin and HF slows down far more than XLA, inflating the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Callable


def seconds(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--prompt-lens", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--new", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cpu-devices", type=int, default=1,
                        help="split the host CPU into this many XLA devices and sample on a data mesh over them")
    parser.add_argument("--streams", type=int, default=None,
                        help="groups of rows decoded at once on one device (default: generate's choice, "
                             "one per core on a CPU host)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="weights and compute of both samplers")
    parser.add_argument("--torch-device", default="cpu", help="where HF generate runs, e.g. cuda")
    args = parser.parse_args()
    for name in ("batches", "prompt_lens", "new", "layers", "repeats"):
        values = getattr(args, name)
        if min(values if isinstance(values, list) else [values]) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {values}")
    if args.hidden < 64 or args.hidden % 64:
        parser.error(f"--hidden must be a positive multiple of 64 (heads of 64 dims), got {args.hidden}")
    if max(args.prompt_lens) + args.new > 2048:
        parser.error(f"a prompt of {max(args.prompt_lens)} plus {args.new} new tokens passes the model's "
                     "2048 positions")
    if args.cpu_devices < 1:
        parser.error(f"--cpu-devices must be at least 1, got {args.cpu_devices}")
    if args.streams is not None and (args.streams < 1 or (args.cpu_devices > 1 and args.streams != 1)):
        parser.error(f"--streams must be at least 1, and 1 with --cpu-devices, got {args.streams}")
    if args.cpu_devices > 1:  # read once, when jax starts its CPU client
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={args.cpu_devices}")

    import jax
    import numpy as np
    import torch
    from transformers import PhiForCausalLM

    from evaluation.tiny_models import build_hf_model
    from phi1_jax.convert import from_hf
    from phi1_jax.sampling import cpu_streams, generate
    from phi1_jax.sharding import make_mesh

    mesh = make_mesh({"data": -1}) if args.cpu_devices > 1 else None
    with tempfile.TemporaryDirectory() as model_dir:
        build_hf_model(model_dir, hidden_size=args.hidden, num_layers=args.layers, num_heads=args.hidden // 64)
        hf = PhiForCausalLM.from_pretrained(model_dir).eval().to(args.torch_device, getattr(torch, args.dtype))
        config, params = from_hf(model_dir)
    config = config.replace(dtype=args.dtype, param_dtype=args.dtype)
    params = jax.device_put(jax.tree.map(lambda x: jax.numpy.asarray(x, args.dtype), params), jax.devices()[0])
    ours_on = "1 XLA device" if mesh is None else f"a data mesh of {len(jax.devices())} XLA devices"
    hf_on = f"{torch.get_num_threads()} torch threads" if args.torch_device == "cpu" else args.torch_device
    print(f"Phi: hidden {args.hidden}, {args.layers} layers, vocab {config.vocab_size}, {args.dtype}; "
          f"{args.new} new tokens, greedy; ours on {ours_on} ({jax.devices()[0].device_kind}), HF on {hf_on}; "
          f"{args.repeats} alternating rounds per line")
    print("| batch | prompt | our streams | ours (tokens/s) | HF generate (tokens/s) | ratio ours/HF (min-max) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for prompt_len in args.prompt_lens:
        for batch in args.batches:
            prompts = np.random.default_rng(0).integers(1, config.vocab_size - 1, (batch, prompt_len))
            ids = torch.tensor(prompts, device=args.torch_device)

            def ours() -> None:
                generate(config, params, prompts.tolist(), max_new_tokens=args.new, mesh=mesh, streams=args.streams)

            def theirs() -> None:
                with torch.no_grad():
                    hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.new,
                                min_new_tokens=args.new, do_sample=False, pad_token_id=0)
                if args.torch_device != "cpu":
                    torch.cuda.synchronize()

            ours()  # compile once; a long evaluation reuses the compiled sampler
            theirs()
            rounds = [(seconds(ours), seconds(theirs)) for _ in range(args.repeats)]
            tokens = batch * args.new
            ours_rate = statistics.median(tokens / o for o, _ in rounds)
            hf_rate = statistics.median(tokens / t for _, t in rounds)
            ratios = [t / o for o, t in rounds]
            streams = 1 if mesh is not None else args.streams or cpu_streams(batch)
            print(f"| {batch} | {prompt_len} | {streams} | {ours_rate:,.0f} | {hf_rate:,.0f} | "
                  f"{min(ratios):.2f}-{max(ratios):.2f}x |", flush=True)


if __name__ == "__main__":
    main()
