"""Pod preflight: compile a run's programs for a TPU slice on this (CPU) host, before renting it.

    python -m phi1_jax.preflight --config=configs/phi1.py --topology=v5litepod-256 [--slices=2]
        [--search] [--sample_batch=64 --sample_prompt_len=512 --sample_new_tokens=384] [--config.a.b=v]

The slice's devices come from libtpu (`phi1_jax.tpu_topology`); the mesh and shardings are the
run's own (`phi1_jax.sharding.make_mesh`, the rule table); the programs are the ones a run
executes: the train step with its microbatches and the eval step (`phi1_jax.train.build`), and the
sampler's prefill and decode step at `--sample_batch` prompts (`phi1_jax.sampling`) on one host's
chips (`sampling.host_mesh`), as `evaluation.humaneval --checkpoint` runs them on a TPU VM. For each program it prints,
per chip, what `phi1_jax.compiled_cost` reads: arguments (parameters, optimizer state, batch or
cache), outputs, temporaries, the total against the chip's HBM, the compile time; for the train
step also the compiled and the model FLOPs (`phi1_jax.metrics`) and the collectives.

A program that does not fit ends the run with exit status 1 and one message naming it, the bytes
needed and available, and the smallest override that fits: `train.microbatches` doubled until it
does, then a stronger `model.remat_policy`, each found by compiling. `--search` prints the whole
table of those candidates. Exit status 2: a usage problem (no libtpu, an unknown TPU type, a
config that cannot run on the slice). `tpu/launch.sh` runs this before any gcloud command.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import sys
import time
from typing import Any, Callable, Iterator, Optional

os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")  # no TPU metadata server to ask on a CPU host

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from phi1_jax import compiled_cost, sampling, sharding, tpu_topology  # noqa: E402
from phi1_jax.metrics import flops_per_token  # noqa: E402
from phi1_jax.model_config import PhiConfig  # noqa: E402
from phi1_jax.train import CONFIG, ConfigError, build, check_run_shape, parse_flags  # noqa: E402

_TOPOLOGY = flags.DEFINE_string("topology", None, "TPU type as tpu/create.sh takes it: v4-32, v5litepod-256, v5p-128, v6e-256")
_SLICES = flags.DEFINE_integer("slices", 1, "number of slices (multi-slice over the data-centre network)")
_SEARCH = flags.DEFINE_bool("search", False, "print the table of microbatches x remat policies that fit")
_SAMPLE_BATCH = flags.DEFINE_integer("sample_batch", 64, "prompts per sampler call (evaluation --batch-size)")
_SAMPLE_PROMPT_LEN = flags.DEFINE_integer("sample_prompt_len", 512, "prompt tokens per sampler call")
_SAMPLE_NEW_TOKENS = flags.DEFINE_integer("sample_new_tokens", 384, "new tokens per sample (--max-new-tokens)")
_PROGRAMS = flags.DEFINE_list("programs", ["train_step", "eval_step", "prefill", "decode"], "which programs to compile")
_JSON = flags.DEFINE_string("json", None, "also write the report as JSON to this file")

PROGRAMS = ("train_step", "eval_step", "prefill", "decode")
BATCH_FEATURES = ("decoder_input_tokens", "decoder_target_tokens", "decoder_loss_weights",
                  "decoder_segment_ids", "decoder_positions")
# Stronger remat saves more activation memory: try the configured policy, then the ones after it.
_REMAT_ORDER = ("none", "dots", "dots_with_no_batch_dims", "full")
_SIZE = re.compile(r"([0-9.]+)\s*([KMGT]i?)?B?\b")
_UNITS = {None: 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


class DoesNotFit(Exception):
    """A program needs more HBM than a chip has: the message says which, by how much, and what fits."""


@dataclasses.dataclass
class ProgramResult:
    """One program compiled for one chip of the slice (bytes per chip)."""

    name: str
    fits: bool
    compile_seconds: float
    memory: Optional[compiled_cost.Memory] = None
    argument_parts: dict[str, int] = dataclasses.field(default_factory=dict)
    compiled_flops: Optional[float] = None
    model_flops: Optional[float] = None
    collectives: dict[str, tuple[int, int]] = dataclasses.field(default_factory=dict)
    needed: Optional[int] = None  # from the compiler's RESOURCE_EXHAUSTED message
    available: Optional[int] = None
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        record = dataclasses.asdict(self)
        if self.memory is not None:
            record["memory"]["total"] = self.memory.total
        return record


@dataclasses.dataclass
class Target:
    """Where the programs are compiled for: the slice, its devices, the number of hosts."""

    slice: tpu_topology.Slice
    slices: int
    devices: list[Any]

    @property
    def hosts(self) -> int:
        return len({(getattr(d, "slice_index", 0), d.process_index) for d in self.devices})

    def describe(self) -> str:
        count = f"{self.slices} x " if self.slices > 1 else ""
        return (f"{count}{self.slice.accelerator}: {len(self.devices)} x {self.devices[0].device_kind} on "
                f"{self.hosts} host{'s' if self.hosts > 1 else ''}, {_gib(self.slice.hbm_bytes)} HBM per chip")


def target(accelerator: str, slices: int = 1) -> Target:
    """The slice's abstract devices (ImportError without libtpu, ValueError for a bad name)."""
    return Target(tpu_topology.parse_slice(accelerator), slices, tpu_topology.abstract_devices(accelerator, slices))


def _parse_bytes(text: str) -> Optional[int]:
    match = _SIZE.fullmatch(text.strip())
    if not match:
        return None
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "")[:1] or None])


def _exhausted(error: Exception) -> tuple[Optional[int], Optional[int], str]:
    """(needed, available, the compiler's line) from a RESOURCE_EXHAUSTED compile error."""
    line = next((line for line in str(error).splitlines() if "RESOURCE_EXHAUSTED" in line), str(error))
    sizes = [_parse_bytes(value) for value in re.findall(r"\(([0-9.]+\s*[KMGT]?i?B?)\)", line)]
    used = re.search(r"[Uu]sed ([0-9.]+[KMGT]?) of ([0-9.]+[KMGT]?)", line)
    if used:
        return _parse_bytes(used.group(1)), _parse_bytes(used.group(2)), line.strip()
    if len(sizes) >= 2:
        return sizes[0], sizes[-1], line.strip()
    return None, None, line.strip()


def _misfit(name: str, start: float, error: Exception) -> ProgramResult:
    """The result of a compile that failed for want of HBM; any other compile error is raised."""
    if "RESOURCE_EXHAUSTED" not in str(error):
        raise error
    needed, available, line = _exhausted(error)
    return ProgramResult(name, False, time.perf_counter() - start, needed=needed, available=available, error=line)


def _compile(name: str, lower: Callable[[], Any]) -> tuple[ProgramResult, Any]:
    """Compiles one program; a RESOURCE_EXHAUSTED failure becomes a result that does not fit."""
    start = time.perf_counter()
    try:
        compiled = lower().compile()
    except jax.errors.JaxRuntimeError as error:
        return _misfit(name, start, error), None
    return ProgramResult(name, True, time.perf_counter() - start, memory=compiled_cost.Memory.of(compiled)), compiled


def _abstract_batch(config: ml_collections.ConfigDict, batch_sharding: Any) -> dict[str, jax.ShapeDtypeStruct]:
    shape = (config.train.global_batch_size, config.train.seq_len)
    return {name: jax.ShapeDtypeStruct(shape, jnp.int32, sharding=batch_sharding) for name in BATCH_FEATURES}


def _train_programs(config: ml_collections.ConfigDict, model_config: PhiConfig, mesh: Any,
                    names: tuple[str, ...]) -> Iterator[ProgramResult]:
    """The train and eval steps exactly as `phi1_jax.train` jits them on this mesh."""
    program = build(config, model_config, mesh)
    batch = _abstract_batch(config, program.batch_sharding)
    state = program.abstract_state
    parts = {"parameters": compiled_cost.bytes_per_device(state.params),
             "batch": compiled_cost.bytes_per_device(batch)}
    with sharding.activate(mesh):
        if "train_step" in names:
            result, compiled = _compile("train_step", lambda: program.step.lower(state, batch))
            result.argument_parts = dict(parts, optimizer_state=compiled_cost.bytes_per_device(state.opt_state))
            tokens = config.train.global_batch_size * config.train.seq_len
            result.model_flops = flops_per_token(model_config, config.train.seq_len) * tokens / mesh.size
            if compiled is not None:
                result.compiled_flops = compiled_cost.flops(compiled)
                result.collectives = compiled_cost.collectives(compiled.as_text())
            yield result
            if not result.fits:
                return  # the search that follows compiles the eval step with each candidate
        if "eval_step" in names:
            result, _ = _compile("eval_step", lambda: program.eval.lower(state.params, batch))
            result.argument_parts = dict(parts)
            yield result


def _sampler_programs(model_config: PhiConfig, mesh: Any, rows: int, prompt_len: int, new_tokens: int,
                      names: tuple[str, ...]) -> Iterator[ProgramResult]:
    """The sampler's prefill and last decode program on one host's chips, as evaluation runs them."""
    start = time.perf_counter()
    try:
        compiled = sampling.compile_programs(model_config, mesh, rows, prompt_len, new_tokens)
    except jax.errors.JaxRuntimeError as error:
        yield _misfit("prefill/decode", start, error)
        return
    seconds = (time.perf_counter() - start) / 2  # both compiled in one call; split evenly
    for name in names:
        program = compiled[name]
        arguments = program.args_info[0]
        shardings = program.input_shardings[0]
        placed = jax.tree.map(lambda info, where: jax.ShapeDtypeStruct(info.shape, info.dtype, sharding=where),
                              arguments, shardings)
        parts = {"parameters": compiled_cost.bytes_per_device(placed[0])}
        if name == "decode":
            parts["cache"] = compiled_cost.bytes_per_device(placed[1][1])
        yield ProgramResult(name, True, seconds, memory=compiled_cost.Memory.of(program), argument_parts=parts)


def compile_run(config: ml_collections.ConfigDict, where: Target, programs: tuple[str, ...] = PROGRAMS,
                sample: tuple[int, int, int] = (64, 512, 384)) -> list[ProgramResult]:
    """Compiles `programs` of the run `config` describes for the slice `where`. `sample` is the
    sampler's (prompts, prompt tokens, new tokens). Raises ConfigError where the config cannot
    run on the slice at all (mesh, batch split)."""
    unknown = set(programs) - set(PROGRAMS)
    if unknown:
        raise ConfigError(f"unknown programs {sorted(unknown)}; the programs are {list(PROGRAMS)}")
    model_config = check_run_shape(config, len(where.devices), where.hosts)
    try:
        mesh = sharding.make_mesh(config.mesh, where.devices)
    except ValueError as error:
        raise ConfigError(str(error)) from error
    results = list(_train_programs(config, model_config, mesh, tuple(p for p in programs if p.endswith("_step"))))
    sampler = tuple(p for p in programs if p in ("prefill", "decode"))
    if sampler:
        host = sampling.host_mesh([d for d in where.devices if (getattr(d, "slice_index", 0), d.process_index) == (0, 0)])
        results += _sampler_programs(model_config, host, *sample, sampler)
    return results


def with_change(config: ml_collections.ConfigDict, microbatches: int, remat: str) -> ml_collections.ConfigDict:
    changed = ml_collections.ConfigDict(config.to_dict())
    changed.train.microbatches = microbatches
    changed.model.remat_policy = remat
    return changed


def candidates(config: ml_collections.ConfigDict, where: Target) -> list[tuple[int, str]]:
    """(microbatches, remat policy) to try, smallest change first: the configured remat with
    microbatches doubled up to what the batch allows (each must keep whole rows on every
    data-parallel device, on every host), then each stronger remat policy from the configured
    microbatches up. The configured pair itself is not among them."""
    train = config.train
    mesh = sharding.mesh_shape(config.mesh, len(where.devices))
    data_parallel = mesh[0] * mesh[1]
    rows_per_host = train.global_batch_size // where.hosts
    counts, k = [], train.microbatches
    while rows_per_host % k == 0 and (train.global_batch_size // k) % data_parallel == 0:
        counts.append(k)
        k *= 2
    configured = config.model.remat_policy
    stronger = _REMAT_ORDER[_REMAT_ORDER.index(configured) + 1:] if configured in _REMAT_ORDER else ()
    return [(k, configured) for k in counts[1:]] + [(k, remat) for remat in stronger for k in counts]


def override_flags(config: ml_collections.ConfigDict, microbatches: int, remat: str) -> str:
    changes = []
    if microbatches != config.train.microbatches:
        changes.append(f"--config.train.microbatches={microbatches}")
    if remat != config.model.remat_policy:
        changes.append(f"--config.model.remat_policy={remat}")
    return " ".join(changes)


def search(config: ml_collections.ConfigDict, where: Target, *, first_only: bool,
           report: Callable[[int, str, list[ProgramResult]], None] = lambda *_: None) -> Optional[tuple[int, str]]:
    """Compiles the train and eval steps for each candidate in order; returns the first that fits
    (all candidates are compiled unless `first_only`), calling `report` after each."""
    found = None
    for microbatches, remat in candidates(config, where):
        results = compile_run(with_change(config, microbatches, remat), where, ("train_step", "eval_step"))
        if len(results) == 1:  # the train step did not fit, so the eval step was not compiled
            results.append(ProgramResult("eval_step", False, 0.0, error="not compiled"))
        report(microbatches, remat, results)
        if all(r.fits for r in results) and found is None:
            found = (microbatches, remat)
            if first_only:
                break
    return found


def _gib(size: Optional[float]) -> str:
    """Bytes in the largest binary unit that keeps a leading digit (GiB, MiB or KiB)."""
    if size is None:
        return "?"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20)):
        if abs(size) >= scale:
            return f"{size / scale:.2f} {unit}"
    return f"{size / 2**10:.2f} KiB"


def format_results(results: list[ProgramResult], hbm: int) -> str:
    """The per-chip table, the argument breakdowns, FLOPs and collectives, as printed."""
    lines = [f"{'program':<11} {'arguments':>11} {'outputs':>11} {'aliased':>11} {'temporaries':>11} "
             f"{'code':>11} {'total':>11} {'of HBM':>7} {'compile':>9}"]
    for r in results:
        if r.memory is None:
            lines.append(f"{r.name:<11} does not fit: {r.error}")
            continue
        m = r.memory
        lines.append(f"{r.name:<11} {_gib(m.arguments):>11} {_gib(m.outputs):>11} {_gib(m.aliased):>11} "
                     f"{_gib(m.temporaries):>11} {_gib(m.code):>11} {_gib(m.total):>11} "
                     f"{m.total / hbm:>7.0%} {r.compile_seconds:>8.1f}s")
    lines.append("total = arguments + outputs - aliased + temporaries + code: an upper bound, since the compiler "
                 "may reuse a donated argument's buffer for temporaries; a program fits when it compiles")
    for r in results:
        if r.argument_parts:
            parts = ", ".join(f"{name.replace('_', ' ')} {_gib(size)}" for name, size in r.argument_parts.items())
            lines.append(f"{r.name} arguments (logical, before TPU tile padding): {parts}")
        if r.model_flops is not None and r.memory is not None:
            compiled = "?" if r.compiled_flops is None else f"{r.compiled_flops:.3e}"
            lines.append(f"{r.name} FLOPs per chip: compiled {compiled} (loop bodies counted once: a scanned "
                         f"layer stack or microbatch loop counts one trip), model {r.model_flops:.3e} "
                         f"(phi1_jax.metrics: 6N + attention, the MFU numerator)")
        if r.collectives:
            lines.append(f"{r.name} collectives in the optimized HLO (each counted once, also inside loops):")
            lines += [f"  {kind:<19} {count:>5} ops {_gib(size):>11}" for kind, (count, size) in r.collectives.items()]
    return "\n".join(lines)


def _no_fit_message(config_name: str, where: Target, failed: ProgramResult, remedy: str) -> str:
    needed = f"needs {_gib(failed.needed)}" if failed.needed else "needs more"
    available = _gib(failed.available or where.slice.hbm_bytes)
    return (f"{failed.name} of {config_name} does not fit a {where.devices[0].device_kind} chip of "
            f"{where.slice.accelerator}: {needed} of HBM, {available} available ({failed.error}); {remedy}")


def run(config: ml_collections.ConfigDict, config_name: str, where: Target, programs: tuple[str, ...],
        sample: tuple[int, int, int], do_search: bool, out: Any = sys.stdout) -> list[ProgramResult]:
    """The command: compile, print, and on a misfit find the override (DoesNotFit carries it)."""
    mesh = dict(zip(sharding.MESH_AXES, sharding.mesh_shape(config.mesh, len(where.devices))))
    print(f"preflight {config_name} on {where.describe()}; mesh {mesh}, "
          f"microbatches {config.train.microbatches}, remat {config.model.remat_policy}", file=out, flush=True)
    results = compile_run(config, where, programs, sample)
    print(format_results(results, where.slice.hbm_bytes), file=out, flush=True)
    if do_search:
        print("\nsearch (train_step and eval_step per chip):", file=out)
        print(f"{'microbatches':>12} {'remat':<24} {'train_step':>11} {'eval_step':>11} fits", file=out)

        def row(microbatches: int, remat: str, found: list[ProgramResult]) -> None:
            sizes = [_gib(r.memory.total) if r.memory else "too big" for r in found]
            print(f"{microbatches:>12} {remat:<24} {sizes[0]:>11} {sizes[1]:>11} "
                  f"{'yes' if all(r.fits for r in found) else 'no'}", file=out, flush=True)

        search(config, where, first_only=False, report=row)
    failed = [r for r in results if not r.fits]
    if not failed:
        return results
    if not failed[0].name.endswith("_step"):
        remedy = "sample fewer prompts per call (--sample_batch here, --batch-size in evaluation.humaneval)"
    else:
        fix = search(config, where, first_only=True)
        remedy = ("no microbatch count or remat policy fits: use a larger slice or more tensor parallelism"
                  if fix is None else f"the smallest change that fits (compiled): {override_flags(config, *fix)}")
    raise DoesNotFit(_no_fit_message(config_name, where, failed[0], remedy))


def main(argv: list[str]) -> None:
    logging.set_verbosity(logging.WARNING)
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; overrides look like --config.train.microbatches=4")
    if CONFIG.value is None or not _TOPOLOGY.value:
        raise app.UsageError("--config=configs/<name>.py and --topology=<TPU type, e.g. v5litepod-256> are required")
    unknown = sorted(set(_PROGRAMS.value) - set(PROGRAMS))
    if unknown:
        raise app.UsageError(f"--programs: unknown {unknown}; the programs are {list(PROGRAMS)}")
    jax.config.update("jax_platforms", "cpu")  # compile for the TPU; never look for one here
    try:
        where = target(_TOPOLOGY.value, _SLICES.value)
    except (ImportError, ValueError) as error:
        _usage_exit(str(error))
    sample = (_SAMPLE_BATCH.value, _SAMPLE_PROMPT_LEN.value, _SAMPLE_NEW_TOKENS.value)
    config_name = flags.FLAGS["config"].config_filename
    try:
        results = run(CONFIG.value, config_name, where, tuple(_PROGRAMS.value), sample, _SEARCH.value)
    except ConfigError as error:
        _usage_exit(f"{config_name} cannot run on {where.slice.accelerator}: {error}")
    except DoesNotFit as error:
        print(f"phi1_jax.preflight: error: {error}", file=sys.stderr)
        sys.exit(1)
    if _JSON.value:
        with open(_JSON.value, "w") as f:
            json.dump({"config": config_name, "topology": where.slice.accelerator, "slices": where.slices,
                       "hbm_bytes": where.slice.hbm_bytes, "programs": [r.to_json() for r in results]}, f, indent=2)
    count = f"{where.slices} x " if where.slices > 1 else ""
    print(f"fits: {', '.join(r.name for r in results)} compiled for {count}{where.slice.accelerator}", file=sys.stderr)


def _usage_exit(message: str) -> None:
    print(f"phi1_jax.preflight: error: {message}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    app.run(main, flags_parser=functools.partial(parse_flags, program="phi1_jax.preflight"))
