"""Speed of one training step: ours (jitted, phi1_jax.train.build) against Hugging Face.

    python benchmarks/train_step.py            # CPU: ours vs PhiForCausalLM + torch AdamW, same run
    python benchmarks/train_step.py --gpu      # accelerator: phi-1 1.3B, seq 2048, bfloat16, ours only

CPU: both sides get the same weights (ours converted with phi1_jax.convert.to_hf), the same
batch, the same loss (mean token cross-entropy), clipping and decoupled weight decay on kernels.
Steps alternate (ours, HF, ours, ...) so load from other processes hits both alike; the medians are
compared. Peak memory: each side runs alone in a child process and reports how far its resident set
grew during the steps (VmHWM reset through /proc/self/clear_refs once the model is built).

GPU: synthetic tokens (no TensorFlow or seqio needed), phi-1 shape, fused (cuDNN) attention, layers
scanned; tokens/s, MFU against the device kind's bf16 peak and the allocator's peak bytes, for each
`--gpu-variants` entry (batch:remat_policy:rows).

MFU uses phi1_jax.metrics.flops_per_token (6N + causal attention); on CPU against the measured
peak of a float32 matmul.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

import jax
import numpy as np

from phi1_jax import sharding
from phi1_jax.default_config import get_default_config
from phi1_jax.metrics import flops_per_token, measure_matmul_peak, peak_flops_per_device, peak_memory_bytes
from phi1_jax.model_config import PhiConfig
from phi1_jax.train import build, global_batch

# A dry run of the --gpu path on a CPU (`--gpu --model small --seq 128`).
PHI1_SMALL_TEST = dict(vocab_size=1024, hidden_size=128, intermediate_size=512, num_layers=2, num_heads=2,
                       max_position_embeddings=256)
# Two phi-shaped models (head size 64 as in phi-1, MLP 4x hidden); the CPU run measures both, since
# which side wins depends on the width (XLA's float32 GEMMs lag MKL's at hidden 256, torch slows at 512).
CPU_MODELS = {
    "h256": dict(vocab_size=2048, hidden_size=256, intermediate_size=1024, num_layers=4, num_heads=4,
                 max_position_embeddings=256),
    "h512": dict(vocab_size=2048, hidden_size=512, intermediate_size=2048, num_layers=4, num_heads=8,
                 max_position_embeddings=256),
}


def train_config(model: dict[str, Any], batch: int, seq_len: int, microbatches: int = 1):
    config = get_default_config()
    config.model.update(model)
    config.train.update(dict(global_batch_size=batch, seq_len=seq_len, microbatches=microbatches,
                             steps=1000, warmup_steps=10, lr=1e-4))
    config.mesh.update(dict(data=-1, fsdp=1, tensor=1))
    return config


def synthetic_batch(batch: int, seq_len: int, vocab: int, seed: int = 0) -> dict[str, np.ndarray]:
    tokens = np.random.default_rng(seed).integers(0, vocab, (batch, seq_len + 1), dtype=np.int32)
    ones = np.ones((batch, seq_len), np.int32)
    return dict(decoder_input_tokens=tokens[:, :-1], decoder_target_tokens=tokens[:, 1:],
                decoder_loss_weights=ones, decoder_segment_ids=ones,
                decoder_positions=np.broadcast_to(np.arange(seq_len, dtype=np.int32), (batch, seq_len)).copy())


class Ours:
    """Our jitted step (AdamW, clipping, donation) on all local devices."""

    def __init__(self, config, batch: dict[str, np.ndarray]):
        self.model_config = PhiConfig.from_dict(config.model)
        mesh = sharding.make_mesh(config.mesh)
        self.program = build(config, self.model_config, mesh)
        self.state = self.program.init()
        self.batch = global_batch(batch, self.program.batch_sharding)
        self.mesh = mesh

    def step(self) -> float:
        with sharding.activate(self.mesh):
            self.state, metrics = self.program.step(self.state, self.batch)
        return float(metrics["loss"])  # blocks until the step is done


class HF:
    """transformers.PhiForCausalLM with the same weights, torch.optim.AdamW, the same loss."""

    def __init__(self, config, params: Any, batch: dict[str, np.ndarray]):
        import torch
        import transformers

        from phi1_jax.convert import to_hf

        torch.set_num_threads(os.cpu_count() or 1)
        with tempfile.TemporaryDirectory() as tmp:
            to_hf(PhiConfig.from_dict(config.model), jax.device_get(params), f"{tmp}/hf")
            self.model = transformers.PhiForCausalLM.from_pretrained(f"{tmp}/hf").train()
        train = config.train
        # Decay on matmul kernels only, as phi1_jax.optimizer.weight_decay_mask does.
        named = list(self.model.named_parameters())
        is_kernel = {n: p.dim() == 2 and "embed_tokens" not in n for n, p in named}
        decay = [p for n, p in named if is_kernel[n]]
        rest = [p for n, p in named if not is_kernel[n]]
        self.optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": train.weight_decay},
                                            {"params": rest, "weight_decay": 0.0}],
                                           lr=train.lr, betas=(train.b1, train.b2), eps=train.eps)
        self.grad_clip = train.grad_clip
        self.inputs = torch.from_numpy(batch["decoder_input_tokens"]).long()
        self.targets = torch.from_numpy(batch["decoder_target_tokens"]).long()
        self.torch = torch

    def step(self) -> float:
        torch = self.torch
        logits = self.model(input_ids=self.inputs).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                                                 self.targets.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.item()


def timed(step: Callable[[], float]) -> tuple[float, float]:
    start = time.perf_counter()
    loss = step()
    return time.perf_counter() - start, loss


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def memory_child(side: str, steps: int, args: argparse.Namespace) -> None:
    """Runs one side alone and prints how much its resident set grew during the steps."""
    config = train_config(CPU_MODELS[args.shape], args.batch, args.seq)
    batch = synthetic_batch(args.batch, args.seq, config.model.vocab_size)
    ours = Ours(config, batch)
    runner = ours if side == "ours" else HF(config, ours.state.params, batch)
    if side != "ours":
        del ours
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident set
    before = _rss_kib("VmRSS")
    for _ in range(steps):
        runner.step()
    print(json.dumps({"side": side, "peak_growth_mib": (_rss_kib("VmHWM") - before) / 1024,
                      "peak_rss_mib": _rss_kib("VmHWM") / 1024}))


def child_memory(side: str, args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, __file__, "--memory-child", side, "--shape", args.shape, "--batch", str(args.batch),
               "--seq", str(args.seq)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def cpu_benchmark(args: argparse.Namespace) -> None:
    config = train_config(CPU_MODELS[args.shape], args.batch, args.seq)
    model_config = PhiConfig.from_dict(config.model)
    batch = synthetic_batch(args.batch, args.seq, model_config.vocab_size)
    ours = Ours(config, batch)
    hf = HF(config, ours.state.params, batch)
    first_ours, first_hf = ours.step(), hf.step()  # compile / warm up; same weights: same loss
    for _ in range(args.warmup - 1):
        ours.step(), hf.step()
    ours_times, hf_times = [], []
    for _ in range(args.steps):
        ours_times.append(timed(ours.step)[0])
        hf_times.append(timed(hf.step)[0])
    tokens = args.batch * args.seq
    peak = measure_matmul_peak("float32")
    flops = flops_per_token(model_config, args.seq)
    ours_tps, hf_tps = tokens / statistics.median(ours_times), tokens / statistics.median(hf_times)
    ours_mem, hf_mem = child_memory("ours", args), child_memory("hf", args)
    print(f"== {args.shape}: device {jax.devices()[0].device_kind} x{jax.device_count()}, {os.cpu_count()} CPUs; "
          f"model {model_config.num_params():,} params, batch {args.batch} x seq {args.seq}, float32")
    print(f"first-step loss: ours {first_ours:.6f}  HF {first_hf:.6f}")
    print(f"median step: ours {statistics.median(ours_times) * 1e3:.1f} ms  HF {statistics.median(hf_times) * 1e3:.1f} ms"
          f"  ({args.steps} interleaved steps each)")
    print(f"tokens/s: ours {ours_tps:,.0f}  HF {hf_tps:,.0f}  ratio ours/HF {ours_tps / hf_tps:.3f}")
    print(f"MFU vs measured float32 matmul peak {peak / 1e9:.1f} GFLOP/s: ours {ours_tps * flops / peak:.1%}  "
          f"HF {hf_tps * flops / peak:.1%}")
    print(f"peak RSS growth during steps: ours {ours_mem['peak_growth_mib']:.0f} MiB  "
          f"HF {hf_mem['peak_growth_mib']:.0f} MiB  ratio {ours_mem['peak_growth_mib'] / hf_mem['peak_growth_mib']:.2f}"
          f"  (peak RSS ours {ours_mem['peak_rss_mib']:.0f} MiB, HF {hf_mem['peak_rss_mib']:.0f} MiB)")


def gpu_variant(args: argparse.Namespace, variant: str) -> None:
    """One `batch:remat:rows` variant, alone in its process (so peak memory and OOM are its own)."""
    device = jax.devices()[0]
    batch_size, remat, rows = variant.split(":")
    batch_size = int(batch_size)
    model = dict(PHI1_SMALL_TEST if args.model == "small" else {}, dtype="bfloat16", scan_layers=True,
                 remat_policy=remat, attention="dot_product", resid_dropout=0.1, attention_dropout=0.0)
    config = train_config(model, batch_size, args.seq)
    model_config = PhiConfig.from_dict(config.model)
    batch = synthetic_batch(batch_size, args.seq, model_config.vocab_size)
    if rows == "causal":  # unpacked rows: plain causal attention, no mask
        batch = {k: v for k, v in batch.items() if k not in ("decoder_segment_ids", "decoder_positions")}
    ours = Ours(config, batch)
    compile_s = timed(ours.step)[0]
    for _ in range(args.warmup):
        ours.step()
    times = [timed(ours.step)[0] for _ in range(args.steps)]
    tps = batch_size * args.seq / statistics.median(times)
    peak = peak_flops_per_device(device)
    mfu = tps * flops_per_token(model_config, args.seq) / (peak * jax.device_count())
    memory = peak_memory_bytes(device)
    print(f"{device.device_kind} x{jax.device_count()} {model_config.num_params():,} params "
          f"seq {args.seq} bf16 batch {batch_size} remat {remat} {rows}: {tps:,.0f} tokens/s, "
          f"MFU {mfu:.1%} (peak {peak / 1e12:.0f} TFLOP/s), step {statistics.median(times) * 1e3:.0f} ms, "
          f"compile+first {compile_s:.0f} s, peak memory {memory / 2**30 if memory else float('nan'):.1f} GiB",
          flush=True)


def gpu_benchmark(args: argparse.Namespace) -> None:
    """Each variant in a child process; one that fails (out of memory) does not stop the others."""
    for variant in args.gpu_variants.split(","):
        command = [sys.executable, __file__, "--gpu", "--gpu-variants", variant, "--seq", str(args.seq),
                   "--steps", str(args.steps), "--warmup", str(args.warmup), "--model", args.model]
        result = subprocess.run(command, capture_output=True, text=True)
        lines = [l for l in result.stdout.splitlines() if "tokens/s" in l]
        print(lines[-1] if result.returncode == 0 and lines else
              f"{variant}: failed (exit {result.returncode}): {result.stderr.strip()[-400:]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", action="store_true", help="phi-1 1.3B on the accelerator, ours only")
    parser.add_argument("--gpu-variants",
                        default="8:dots_with_no_batch_dims:causal,8:dots_with_no_batch_dims:packed,16:full:causal",
                        help="comma list of batch:remat_policy:(causal|packed) to try on the accelerator; "
                             "packed rows carry segment ids (a materialised mask), causal rows do not")
    parser.add_argument("--model", choices=("phi1", "small"), default="phi1",
                        help="--gpu model: phi-1 (1.3B), or a small one to try the script on a CPU")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=None, help="default 256 on CPU, 2048 on --gpu")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--shape", choices=sorted(CPU_MODELS), action="append",
                        help="CPU model shape(s) to compare (default: all)")
    parser.add_argument("--memory-child", choices=("ours", "hf"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.seq = args.seq or (2048 if args.gpu else 256)
    if args.memory_child:
        args.shape = args.shape[0]
        memory_child(args.memory_child, max(args.warmup, 2), args)
    elif args.gpu and "," in args.gpu_variants:
        gpu_benchmark(args)
    elif args.gpu:
        gpu_variant(args, args.gpu_variants)
    else:
        for shape in args.shape or sorted(CPU_MODELS):
            cpu_benchmark(argparse.Namespace(**{**vars(args), "shape": shape}))


if __name__ == "__main__":
    main()
