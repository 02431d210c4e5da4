"""The full-size preflight table of tpu/README.md: phi-1 and phi-1-small compiled for real TPU slices.

    JAX_PLATFORMS=cpu python benchmarks/preflight_pods.py [--configs configs/phi1.py,configs/phi1_small.py]
        [--topologies v4-32,v5litepod-256,v5p-128,v6e-256] [--out preflight_pods.md]

For each config and slice it compiles the run's four programs (`phi1_jax.preflight.compile_run`;
the sampler's on one host's chips, as evaluation runs them);
where the train or eval step does not fit, it searches the smallest override that does (more
microbatches, then stronger remat, each compiled) and compiles the four programs again with it.
It prints one markdown row per pair: the override, HBM per chip of each program against the
chip's, and the compile times on this host. These are compiles, not runs: memory and FLOPs come
from the TPU compiler; no step time is measured. A phi-1 train-step compile takes minutes on a
2-core host, so this is a benchmark, not a test (tests/test_preflight.py compiles the tiny model).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import jax

from phi1_jax import preflight
from phi1_jax.default_config import load_config_file

SAMPLE = (64, 512, 384)  # sampler prompts, prompt tokens, new tokens: evaluation's batch, HumanEval-sized


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="configs/phi1.py,configs/phi1_small.py")
    parser.add_argument("--topologies", default="v4-32,v5litepod-256,v5p-128,v6e-256")
    parser.add_argument("--programs", default=",".join(preflight.PROGRAMS),
                        help="which programs; without the train and eval steps no override is searched")
    parser.add_argument("--out", help="also write the table to this markdown file")
    args = parser.parse_args()
    jax.config.update("jax_platforms", "cpu")
    rows_, prompt, new = SAMPLE
    header = (f"| config | slice | override that fits | train step | eval step | prefill ({rows_} x {prompt}, one host) | "
              f"decode ({rows_} x {prompt + new}, one host) | compile: train / all |\n| --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = [header]
    print(header, flush=True)
    for config_path in args.configs.split(","):
        for accelerator in args.topologies.split(","):
            rows.append(_row(config_path, accelerator, tuple(args.programs.split(","))))
            print(rows[-1], flush=True)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, jax {jax.__version__}"
    footer = f"\nCompiled on this host ({machine}), libtpu {_libtpu_version()}."
    print(footer)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(rows) + "\n" + footer + "\n")


def _row(config_path: str, accelerator: str, programs: tuple[str, ...]) -> str:
    config = load_config_file(config_path)
    try:
        where = preflight.target(accelerator)
    except ValueError as error:  # a generation this libtpu does not know
        return f"| {config_path} | {accelerator} | libtpu cannot lay it out: {error} | | | | | |"
    start = time.perf_counter()
    results = preflight.compile_run(config, where, programs, sample=SAMPLE)
    override = "as shipped" if "train_step" in programs else "not searched"
    if not all(r.fits for r in results if r.name.endswith("_step")):
        fix = preflight.search(config, where, first_only=True)
        if fix is None:
            return f"| {config_path} | {accelerator} | nothing fits | | | | | |"
        override = preflight.override_flags(config, *fix)
        config = preflight.with_change(config, *fix)
        results = preflight.compile_run(config, where, programs, sample=SAMPLE)
    seconds = time.perf_counter() - start
    hbm = where.slice.hbm_bytes

    def cell(name: str) -> str:
        result = next((r for r in results if r.name == name or name in r.name.split("/")), None)
        if result is None:
            return "not compiled"
        if result.memory is None:
            return f"does not fit ({result.error[:60]})"
        return f"{result.memory.total / 2**30:.1f} GiB ({result.memory.total / hbm:.0%})"

    train = next((f"{r.compile_seconds:.0f} s" for r in results if r.name == "train_step"), "-")
    return (f"| {config_path} | {accelerator} | {override} | {cell('train_step')} | {cell('eval_step')} | "
            f"{cell('prefill')} | {cell('decode')} | {train} / {seconds:.0f} s |")


def _libtpu_version() -> str:
    from importlib import metadata

    return metadata.version("libtpu")


if __name__ == "__main__":
    sys.exit(main())
