"""The pod preflight (phi1_jax.preflight) compiles the tiny model for small real TPU topologies with
libtpu on this CPU host: its per-chip numbers agree with the compiler and the parameter count, a
config too large for its slice fails with the override that fits (which then compiles), and
tpu/launch.sh stops before any gcloud command when the preflight fails. The full phi-1 compiles
are `benchmarks/preflight_pods.py` (minutes each)."""

import os
import re
import subprocess
import sys

import jax
import pytest

from phi1_jax import compiled_cost, preflight, sampling, sharding, tpu_topology
from phi1_jax.default_config import load_config_file
from phi1_jax.model_config import PhiConfig
from phi1_jax.train import build

pytest.importorskip("libtpu", reason="libtpu is installed by `make test` (the test extra)")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = (8, 64, 64)


def _tiny(**train):
    config = load_config_file(os.path.join(REPO, "configs", "tiny.py"))
    config.mesh.update(dict(data=1, fsdp=-1, tensor=1))
    config.train.update(train)
    return config


@pytest.mark.parametrize("name, chips, torus, hosts", [
    ("v4-32", 16, (2, 2, 4), 4), ("v5litepod-256", 256, (16, 16), 64), ("v5e-8", 8, (2, 4), 1),
    ("v5p-128", 64, (4, 4, 4), 16), ("v6e-64", 64, (8, 8), 16), ("v4-8", 4, (2, 2, 1), 1)])
def test_slice_names_map_to_libtpus_devices(name, chips, torus, hosts):
    spec = tpu_topology.parse_slice(name)
    assert (spec.chips, spec.torus) == (chips, torus)
    devices = tpu_topology.abstract_devices(name)
    assert len(devices) == chips and len({d.process_index for d in devices}) == hosts


@pytest.mark.parametrize("bad, reason", [("v7x-8", "unknown TPU type"), ("v4-6", "not a slice size"),
                                         ("v5p-2", "not a slice size"), ("tpu", "unknown TPU type")])
def test_bad_slice_names_are_refused_clearly(bad, reason):
    with pytest.raises(ValueError, match=reason):
        tpu_topology.parse_slice(bad)


def test_several_slices_put_the_data_axis_across_slices():
    devices = tpu_topology.abstract_devices("v5litepod-4", slices=2)
    mesh = sharding.make_mesh({"data": 2, "fsdp": -1}, devices)
    assert dict(mesh.shape) == {"data": 2, "fsdp": 4, "tensor": 1}
    for row, devices_of_row in enumerate(mesh.devices[:, :, 0]):
        assert {d.slice_index for d in devices_of_row} == {row}
    with pytest.raises(ValueError, match="multiple of the slices"):
        sharding.make_mesh({"data": 1, "fsdp": -1}, devices)


@pytest.mark.parametrize("topology, programs", [("v5litepod-4", preflight.PROGRAMS), ("v4-8", ("train_step",))])
def test_tiny_compiles_and_the_per_chip_numbers_agree_with_the_compiler(topology, programs):
    config = _tiny()
    where = preflight.target(topology)
    results = {r.name: r for r in preflight.compile_run(config, where, programs, sample=SAMPLE)}
    assert tuple(results) == programs and all(r.fits for r in results.values())

    # The same train step, compiled here independently, has the memory the preflight reports.
    model_config = PhiConfig.from_dict(config.model)
    mesh = sharding.make_mesh(config.mesh, where.devices)
    program = build(config, model_config, mesh)
    batch = preflight._abstract_batch(config, program.batch_sharding)
    with sharding.activate(mesh):
        compiled = program.step.lower(program.abstract_state, batch).compile()
    train = results["train_step"]
    assert train.memory == compiled_cost.Memory.of(compiled)
    stats = compiled.memory_analysis()
    assert train.memory.total == (stats.argument_size_in_bytes + stats.output_size_in_bytes
                                  - stats.alias_size_in_bytes + stats.temp_size_in_bytes
                                  + stats.generated_code_size_in_bytes)

    # Arguments = parameters + Adam state + batch, each split over the fsdp axis (4 chips).
    fsdp, parts = 4, train.argument_parts
    assert parts["parameters"] == pytest.approx(model_config.num_params() * 4 / fsdp, rel=0.02)  # biases replicate
    assert parts["optimizer_state"] == pytest.approx(2 * parts["parameters"], rel=0.001)
    assert parts["batch"] == 5 * config.train.global_batch_size * config.train.seq_len * 4 // fsdp
    logical = sum(parts.values())
    assert logical <= train.memory.arguments <= 1.5 * logical  # TPU tiles pad small dimensions

    # The printed table carries exactly these numbers.
    printed = preflight.format_results(list(results.values()), where.slice.hbm_bytes)
    row = next(line for line in printed.splitlines() if line.startswith("train_step "))
    assert preflight._gib(train.memory.total) in row and preflight._gib(train.memory.temporaries) in row
    assert train.model_flops == pytest.approx(
        6 * (model_config.num_params() - model_config.vocab_size * model_config.hidden_size) * 8 * 256 / fsdp
        + 6 * model_config.num_layers * 256 * model_config.num_heads * model_config.head_size * 8 * 256 / fsdp)
    assert train.collectives["all-gather"][0] > 0  # fsdp gathers the sharded weights
    if "decode" in results:
        assert results["decode"].argument_parts["cache"] > 0


def _launch(*args):
    env = {k: v for k, v in os.environ.items() if k not in ("ACCELERATOR", "PROJECT", "WORKDIR")}
    env["PYTHON"] = sys.executable
    return subprocess.run([os.path.join(REPO, "tpu", "launch.sh"), "--dry-run", "--project=my-proj",
                           "--workdir=gs://b1/run", *args], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=900)


def test_a_run_too_large_for_its_slice_stops_the_launch_with_the_override_that_fits():
    # 1024 rows x 256 tokens x a 64k vocabulary: float32 logits and their gradient are 16 GiB per v5e chip.
    too_big = ("configs/tiny.py", "--config.model.num_layers=1", "--config.model.vocab_size=65536",
               "--config.train.global_batch_size=1024", "--config.mesh.data=1", "--config.mesh.fsdp=-1")
    stopped = _launch("--accelerator=v5litepod-4", *too_big)
    assert stopped.returncode == 1 and stopped.stdout == ""  # no gcloud line
    message = stopped.stderr
    assert re.search(r"train_step of configs/tiny.py does not fit a TPU v5 lite chip of v5litepod-4: "
                     r"needs [0-9.]+ GiB of HBM, [0-9.]+ GiB available", message), message
    assert "nothing was launched" in message
    fix = re.search(r"the smallest change that fits \(compiled\): (--config\.train\.microbatches=(\d+))", message)
    assert fix and int(fix.group(2)) > 1, message

    fitted = _launch("--accelerator=v5litepod-4", *too_big, fix.group(1))
    assert fitted.returncode == 0, fitted.stderr
    unchecked = _launch("--skip-preflight", *too_big, fix.group(1))
    assert fitted.stdout == unchecked.stdout and "phi1_jax.train --config=configs/tiny.py" in fitted.stdout


def test_without_libtpu_the_preflight_exits_2_with_the_install_line(tmp_path):
    (tmp_path / "libtpu.py").write_text("raise ImportError('no libtpu here')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), REPO]))
    result = subprocess.run([sys.executable, "-m", "phi1_jax.preflight", "--config=configs/tiny.py",
                             "--topology=v5litepod-4"], capture_output=True, text=True, cwd=REPO, env=env,
                            timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "phi1_jax.preflight: error: compiling for a TPU on this host needs libtpu: "
        "pip install -c constraints.txt libtpu (or pip install -e '.[test]')")


def test_resource_exhausted_messages_and_collectives_are_read():
    message = ("RESOURCE_EXHAUSTED: XLA:TPU compile permanent error. Ran out of memory in memory space hbm. "
               "HLO temporaries (136.12G) exceeds available HBM (30.75G)")
    needed, available, line = preflight._exhausted(RuntimeError(message))
    assert (needed, available) == (int(136.12 * 2**30), int(30.75 * 2**30)) and line == message
    hlo = ("%all-gather.1 = bf16[128,384]{1,0:T(8,128)(2,1)} all-gather(%p), dimensions={0}\n"
           "%ars = (f32[64]{0}, f32[256]{0}) all-reduce-start(%q), to_apply=%add\n"
           "%ard = f32[256]{0} all-reduce-done(%ars)\n")
    assert compiled_cost.collectives(hlo) == {"all-gather": (1, 128 * 384 * 2), "all-reduce": (1, 256 * 4)}


def test_the_search_doubles_microbatches_then_strengthens_remat():
    config = _tiny(global_batch_size=32, microbatches=2)
    config.model.remat_policy = "dots"
    where = preflight.Target(tpu_topology.parse_slice("v5litepod-4"), 1,
                             [type("D", (), {"process_index": 0})()] * 4)
    assert preflight.candidates(config, where) == [
        (4, "dots"), (8, "dots"),
        (2, "dots_with_no_batch_dims"), (4, "dots_with_no_batch_dims"), (8, "dots_with_no_batch_dims"),
        (2, "full"), (4, "full"), (8, "full")]
    assert preflight.override_flags(config, 4, "full") == (
        "--config.train.microbatches=4 --config.model.remat_policy=full")


def test_sampler_programs_have_the_callers_shapes():
    config = PhiConfig.from_dict(_tiny().model)
    mesh = sharding.make_mesh({"data": -1}, jax.devices())
    programs = sampling.compile_programs(config, mesh, 5, 20, 100)
    tokens = programs["prefill"].args_info[0][1]
    cache = programs["decode"].args_info[0][1][1]
    assert tokens.shape == (8, 32)  # rows to a power of two over 8 devices, prompt to 16
    assert cache["segment_ids"].shape == (8, 192)  # 32 + 100 new tokens, in blocks of 64
