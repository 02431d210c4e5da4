"""Where a decode step of `phi1_jax.sampling.generate` spends its time, read from XLA's own
profile (a profile, not a comparison: `eval_sampling_speed.py` measures us against HF generate).

It samples once to compile, then traces a second identical `generate` call (one stream of rows,
so one decode loop) with `jax.profiler`, reads the per-op events back with
`jax.profiler.ProfileData`, keeps those of the decode loop (`_decode_until_full`) and splits
their time per decode step into the matmuls (YNNPACK fusions),
the attention dots over the KV cache (XLA:CPU's own dot emitter) and everything else. Traced times
include the profiler's own overhead, so compare the parts with each other, and the untraced time
of the whole call (printed first) for scale.
It also prints what the attention dots read from the cache per step and the rate that implies.

    .venv/bin/python benchmarks/decode_step_profile.py [--batch 32] [--prompt-len 64] [--new 128]
"""

from __future__ import annotations

import argparse
import collections
import glob
import tempfile
import time


def _part(hlo_op: str) -> str:
    if hlo_op.startswith("ynn_fusion"):
        return "matmuls (YNNPACK fusions)"
    return "attention dots over the cache" if hlo_op.startswith("dot") else "everything else"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--prompt-len", type=int, default=64)
    parser.add_argument("--new", type=int, default=128, help="new tokens, all decoded (no EOS)")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    args = parser.parse_args()
    for name in ("batch", "prompt_len", "new", "layers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.batch < 2:
        parser.error("--batch must be at least 2: at batch 1 the weight matmuls are matrix-vector dots "
                     "as well, and the profile cannot tell them from the attention's")
    if args.hidden < 64 or args.hidden % 64:
        parser.error(f"--hidden must be a positive multiple of 64 (heads of 64 dims), got {args.hidden}")

    import jax
    import numpy as np
    from jax.profiler import ProfileData

    from phi1_jax import PhiConfig, init_params
    from phi1_jax.sampling import CACHE_BLOCK, generate

    config = PhiConfig(vocab_size=512, hidden_size=args.hidden, intermediate_size=4 * args.hidden,
                       num_layers=args.layers, num_heads=args.hidden // 64)
    params = init_params(config, jax.random.key(0))
    prompts = np.random.default_rng(0).integers(1, config.vocab_size, (args.batch, args.prompt_len)).tolist()
    generate(config, params, prompts, max_new_tokens=args.new, streams=1)  # compile
    start = time.perf_counter()
    generate(config, params, prompts, max_new_tokens=args.new, streams=1)
    untraced = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as trace_dir:
        jax.profiler.start_trace(trace_dir)
        generate(config, params, prompts, max_new_tokens=args.new, streams=1)
        jax.profiler.stop_trace()
        (trace,) = glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True)
        profile = ProfileData.from_file(trace)

    parts: collections.Counter = collections.Counter()
    for plane in profile.planes:
        for line in plane.lines:
            for event in line.events:
                stats = dict(event.stats)
                if stats.get("hlo_module") != "jit__decode_until_full" or "hlo_op" not in stats:
                    continue
                parts[_part(stats["hlo_op"])] += event.duration_ns
    if not parts:
        raise SystemExit("the trace holds no op of the decode loop: is this jax's CPU backend?")

    print(f"tiny Phi hidden {args.hidden} x {args.layers} layers, batch {args.batch}, prompt {args.prompt_len}, "
          f"{args.new} new tokens, {jax.devices()[0].device_kind}; untraced, the whole call takes "
          f"{untraced * 1e3 / args.new:.2f} ms per new token (prefill included); traced op time per decode step:")
    for part, nanoseconds in parts.most_common():
        print(f"  {part:32s} {nanoseconds / args.new / 1e3:8.0f} us")
    # At step s the cache holds the bucketed prompt plus s tokens, rounded up past the next block
    # boundary (how `generate` sizes and grows it), and the two dots of each layer read all of it.
    prompt_slots = -(-args.prompt_len // 16) * 16
    capacities = [((prompt_slots + step) // CACHE_BLOCK + 1) * CACHE_BLOCK for step in range(args.new)]
    per_slot = 2 * config.num_layers * args.batch * config.hidden_size * 4  # f32 keys and values
    cache_bytes = per_slot * sum(capacities) / args.new
    dots = parts["attention dots over the cache"] / args.new
    print(f"  the attention dots read {cache_bytes / 1e6:.0f} MB of cache per step: "
          f"{cache_bytes / dots:.1f} GB/s")


if __name__ == "__main__":
    main()
