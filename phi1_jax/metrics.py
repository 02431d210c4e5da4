"""Throughput accounting (FLOPs per token, device peak, MFU) and the metric sinks of a run:
console progress, `workdir/metrics.jsonl` and TensorBoard events.

FLOPs per trained token (forward + backward = 3x forward, a multiply-add = 2 FLOPs):
    6 * N                      N = parameters that take part in matmuls: everything except the
                               embedding table, which is a gather (lm_head is a matmul and counts).
  + 6 * L * T * H * D / 1      causal attention: QK^T and PV are 2 * T * H * D multiply-adds per
                               token per layer forward, of which causality keeps half:
                               3 * 2 * (2 * 2 * T * H * D) / 2 = 6 * T * H * D per layer.
Remat recomputation is not counted (it is overhead, not model FLOPs), so MFU is comparable across
remat policies. MFU = achieved model FLOP/s / (devices x peak FLOP/s per device).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np
from etils import epath

from phi1_jax.model_config import PhiConfig

# Dense bfloat16 peak FLOP/s per JAX device, matched against `device.device_kind` (substring,
# first match wins, so longer names come first). TPU v2/v3 JAX devices are single cores.
PEAK_FLOPS_BY_KIND: tuple[tuple[str, float], ...] = (
    ("TPU v6 lite", 918e12),
    ("TPU v6", 918e12),
    ("TPU v5 lite", 197e12),
    ("TPU v5p", 459e12),
    ("TPU v5", 459e12),
    ("TPU v4", 275e12),
    ("TPU v3", 61.5e12),
    ("TPU v2", 22.5e12),
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),
    ("A100", 312e12),
    ("L4", 121e12),
    ("A10G", 70e12),
)


def flops_per_token(config: PhiConfig, seq_len: int) -> float:
    """Model FLOPs per trained token (see the module docstring)."""
    matmul_params = config.num_params() - config.vocab_size * config.hidden_size
    attention = 6 * config.num_layers * seq_len * config.num_heads * config.head_size
    return float(6 * matmul_params + attention)


def measure_matmul_peak(dtype: str = "float32", size: int = 2048, repeats: int = 3) -> float:
    """FLOP/s of the best of `repeats` square matmuls on the default device (the CPU's peak)."""
    a = jnp.ones((size, size), dtype)
    matmul = jax.jit(lambda x: x @ x)
    matmul(a).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best


def peak_flops_per_device(device: jax.Device, configured: float = 0.0, dtype: str = "float32") -> float:
    """`configured` when positive; else the table entry for the device kind; on CPU (or an unknown
    kind) the measured peak of a large matmul, so MFU stays a meaningful fraction."""
    if configured > 0:
        return configured
    for kind, peak in PEAK_FLOPS_BY_KIND:
        if kind.lower() in device.device_kind.lower():
            return peak
    # Simulated CPU devices (--xla_force_host_platform_device_count) share the host's cores.
    share = jax.local_device_count() if device.platform == "cpu" else 1
    return measure_matmul_peak(dtype) / share


def mfu(tokens_per_sec: float, flops_token: float, num_devices: int, peak_per_device: float) -> float:
    return tokens_per_sec * flops_token / (num_devices * peak_per_device)


class MetricsWriter:
    """Writes one record per logged step to the console, `metrics.jsonl` and TensorBoard.

    Only process 0 writes; the others keep quiet so a pod does not print N copies.
    """

    def __init__(self, workdir: str, total_steps: int, enabled: bool = True):
        self.total_steps = total_steps
        self.enabled = enabled
        self._path = epath.Path(workdir) / "metrics.jsonl"
        # Object stores (gs://) cannot append: there the whole file is rewritten at every log line.
        self._remote = "://" in workdir
        self._lines: list[str] = []
        self._jsonl = None
        self._tb = None
        if enabled:
            from tensorboardX import SummaryWriter

            if self._remote:
                self._lines = self._path.read_text().splitlines(True) if self._path.exists() else []
            else:
                self._jsonl = open(self._path, "a")
            self._tb = SummaryWriter(f"{workdir}/tensorboard")

    def write(self, step: int, values: Mapping[str, float], eta_s: Optional[float] = None) -> None:
        if not self.enabled:
            return
        record: dict[str, Any] = {"step": step, **{k: float(v) for k, v in values.items()}}
        line = json.dumps(record) + "\n"
        if self._remote:
            self._lines.append(line)
            self._path.write_text("".join(self._lines))
        else:
            self._jsonl.write(line)
            self._jsonl.flush()
        for name, value in values.items():
            self._tb.add_scalar(name, float(value), step)
        shown = " ".join(f"{k}={_short(v)}" for k, v in values.items())
        eta = f" eta={_duration(eta_s)}" if eta_s is not None else ""
        print(f"step {step}/{self.total_steps} {shown}{eta}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled:
            if self._jsonl:
                self._jsonl.close()
            self._tb.close()


def _short(value: float) -> str:
    value = float(value)
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def read_metrics(path: str) -> list[dict[str, float]]:
    """The records of a `metrics.jsonl`; a step logged again after a resume replaces its earlier line."""
    by_step: dict[tuple[int, bool], dict[str, float]] = {}
    with open(path) as f:
        for line in f:
            record = json.loads(line)
            by_step[(int(record["step"]), "eval_loss" in record)] = record
    return [by_step[key] for key in sorted(by_step)]


def peak_memory_bytes(device: jax.Device) -> Optional[int]:
    """Peak bytes the device allocator has handed out, where the backend reports it."""
    stats = device.memory_stats() or {}
    value = stats.get("peak_bytes_in_use")
    return None if value is None else int(np.int64(value))
