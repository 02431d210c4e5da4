"""Train a Phi model: `python -m phi1_jax.train --config=configs/tiny.py [--config.train.lr=3e-4 ...]`.

The same loop runs the tiny model on a laptop CPU, phi-1 on one GPU and phi-1 on a TPU pod:

    config ──► checks (before any compute) ──► mesh + shardings (phi1_jax.sharding)
           ──► state: restore workdir/checkpoints, else init (or `train.init_from` for finetuning)
           ──► loop: this host's slice of the batch ─► global jax.Array ─► jitted step (donated state)
                     log / eval / checkpoint; SIGTERM (preemption) ─► final checkpoint, exit
Writes workdir/config.json, metrics.jsonl, tensorboard/, checkpoints/<step>/ and checkpoints/tokenizer/
(the vocabulary, see phi1_jax.checkpoint). A checkpoint that cannot resume this run stops it
before training and is left as it was (phi1_jax.train_checkpoint).
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import time
from typing import Any, Iterator, Mapping, NamedTuple

import flax.linen as nn
import jax
import ml_collections
import numpy as np
import optax
from absl import app, logging
from etils import epath
from ml_collections import config_flags

from data_pipeline import config_cli
from data_pipeline.sources import SPLITS
from phi1_jax import sharding, train_checkpoint
from phi1_jax.checkpoint import VocabularyMismatchError, load_model, vocabulary_to_carry
from phi1_jax.layer_stacking import match_layout
from phi1_jax.metrics import MetricsWriter, flops_per_token, mfu, peak_flops_per_device, peak_memory_bytes
from phi1_jax.model_config import PhiConfig
from phi1_jax.optimizer import learning_rate_schedule, make_optimizer
from phi1_jax.train_step import TrainState, eval_step, init_state, train_step

# The --config flag of every command that takes a run config (this one and phi1_jax.preflight).
CONFIG = config_flags.DEFINE_config_file("config", None, "a configs/*.py file", lock_config=True)


class ConfigError(ValueError):
    """A problem with the config or the environment, found before any compute."""


def check_config(config: ml_collections.ConfigDict) -> PhiConfig:
    """Everything that can be checked cheaply, so a bad run fails in seconds, not after compiling."""
    model_config = check_run_shape(config, jax.device_count(), jax.process_count())
    _check_data_paths(config.data)
    init_from = config.train.init_from
    if init_from and not epath.Path(init_from).exists():
        raise ConfigError(f"train.init_from: no checkpoint at {init_from}")
    _check_writable(config.workdir)
    return model_config


def check_run_shape(config: ml_collections.ConfigDict, device_count: int, process_count: int) -> PhiConfig:
    """What the config alone decides, for a run on `device_count` devices of `process_count` hosts
    (this machine's, or a pod's for `phi1_jax.preflight`): the model, the schedule, the mesh, and
    the batch split over hosts and microbatches."""
    try:
        model_config = PhiConfig.from_dict(config.model)
        learning_rate_schedule(config.train)
        sharding.mesh_shape(config.mesh, device_count)
    except ValueError as error:
        raise ConfigError(str(error)) from error
    train = config.train
    rows_per_host, leftover = divmod(train.global_batch_size, process_count)
    if leftover or rows_per_host % train.microbatches:
        raise ConfigError(f"train.global_batch_size {train.global_batch_size} must split evenly over "
                          f"{process_count} hosts and then {train.microbatches} microbatches")
    if train.seq_len > model_config.max_position_embeddings:
        raise ConfigError(f"train.seq_len {train.seq_len} exceeds model.max_position_embeddings "
                          f"{model_config.max_position_embeddings}")
    return model_config


def _check_data_paths(data: ml_collections.ConfigDict) -> None:
    """The eval split and every configured data path: a typo fails here, not after compiling."""
    if data.eval_split not in SPLITS:
        raise ConfigError(f"data.eval_split {data.eval_split!r}: the Tasks have the splits {list(SPLITS)}")
    for name in ("vocabulary", "cache_dir"):
        path = data[name]
        if path and not epath.Path(path).exists():
            raise ConfigError(f"data.{name}: {path} does not exist")
    configured = {name: pattern for name, pattern in data.sources.items() if pattern}
    if configured:
        from data_pipeline import records  # TensorFlow, as `_loader`

        for name, pattern in configured.items():
            try:
                records.expand_pattern(pattern)
            except FileNotFoundError as error:
                raise ConfigError(f"data.sources.{name}: {error}") from error


def _check_writable(workdir: str) -> None:
    probe = epath.Path(workdir) / f".write_probe_{jax.process_index()}"
    try:
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_text("ok")
        probe.unlink()
    except OSError as error:
        raise ConfigError(f"workdir {workdir} is not writable: {error}") from error


def _loader() -> Any:
    """data_pipeline.seqio_data.loader, imported on first use: it pulls in TensorFlow and seqio, which the
    benchmarks and the model-only code paths do without."""
    from data_pipeline.seqio_data import loader

    return loader


def _vocabularies() -> Any:
    """data_pipeline.seqio_data.vocabularies, imported on first use (TensorFlow, as `_loader`)."""
    from data_pipeline.seqio_data import vocabularies

    return vocabularies


def open_data(config: ml_collections.ConfigDict, split: str, seed: int) -> Any:
    """This host's slice of the global batch, as a resumable `TrainIterator`."""
    try:
        return _loader().make_train_iterator(
            config.data, seq_len=config.train.seq_len,
            batch_size=config.train.global_batch_size // jax.process_count(),
            shard_index=jax.process_index(), shard_count=jax.process_count(), seed=seed, split=split)
    except (FileNotFoundError, ValueError, KeyError) as error:
        raise ConfigError(f"data ({config.data.mixture!r}, split {split!r}): {error}") from error


def global_batch(local: dict[str, np.ndarray], batch_sharding: jax.sharding.Sharding) -> dict[str, jax.Array]:
    """Each host's rows -> one global array per feature, laid out as the batch sharding says."""
    return {name: jax.make_array_from_process_local_data(batch_sharding, np.asarray(value))
            for name, value in local.items()}


class Program(NamedTuple):
    """The compiled pieces of a run on one mesh."""

    mesh: jax.sharding.Mesh
    tx: optax.GradientTransformation
    abstract_state: TrainState  # ShapeDtypeStructs carrying their shardings
    state_sharding: TrainState
    batch_sharding: jax.sharding.Sharding
    init: Any  # () -> TrainState, or (params) -> TrainState
    step: Any  # (state, batch) -> (state, metrics); the state is donated
    eval: Any  # (params, batch) -> (loss sum, token count)


def build(config: ml_collections.ConfigDict, model_config: PhiConfig, mesh: jax.sharding.Mesh) -> Program:
    """Shardings of every array from the rule table, and the jitted init, train and eval steps."""
    tx = make_optimizer(config.train)
    seed = config.train.seed
    boxed = jax.eval_shape(functools.partial(init_state, model_config, tx, seed, boxed=True))
    state_sharding = sharding.logical_to_sharding(nn.get_partition_spec(boxed), mesh)
    abstract_state = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                                  nn.unbox(boxed), state_sharding)
    batch_sharding = sharding.batch_sharding(mesh)
    replicated = sharding.replicated(mesh)
    return Program(
        mesh=mesh,
        tx=tx,
        abstract_state=abstract_state,
        state_sharding=state_sharding,
        batch_sharding=batch_sharding,
        init=jax.jit(lambda params=None: init_state(model_config, tx, seed, params=params),
                     out_shardings=state_sharding),
        step=jax.jit(functools.partial(train_step, model_config, tx, config.train.microbatches),
                     in_shardings=(state_sharding, batch_sharding), out_shardings=(state_sharding, replicated),
                     donate_argnums=0),
        eval=jax.jit(functools.partial(eval_step, model_config, config.train.microbatches),
                     in_shardings=(state_sharding.params, batch_sharding), out_shardings=replicated),
    )


def initial_state(config: ml_collections.ConfigDict, program: Program,
                  manager: Any) -> tuple[TrainState, dict[str, Any] | None, bool]:
    """(state, data position or None, resumed): the workdir's latest good checkpoint; else
    `train.init_from`'s parameters; else a fresh init. A restore problem raises RestoreError."""
    restored = train_checkpoint.restore_latest(
        manager, program.abstract_state, PhiConfig.from_dict(config.model),
        allow_host_count_change=config.checkpoint.allow_host_count_change)
    if restored is not None:
        return restored.state, restored.data_state, True
    if config.train.init_from:
        return program.init(pretrained_params(config, program)), None, False
    return program.init(), None, False


def pretrained_params(config: ml_collections.ConfigDict, program: Program) -> Any:
    """`train.init_from`'s parameters in this run's layer layout, on this run's shardings. The
    shapes must match; numerics (dtype, dropout, remat, scan) may differ."""
    model_config = PhiConfig.from_dict(config.model)
    saved_config, params = load_model(config.train.init_from)
    different = saved_config.shape_differences(model_config)
    if different:
        raise ConfigError(f"train.init_from {config.train.init_from} has another shape (saved, configured): {different}")
    params = match_layout(params, model_config.scan_layers, model_config.num_layers)
    return jax.device_put(params, program.state_sharding.params)


def evaluate(config: ml_collections.ConfigDict, program: Program, params: Any) -> float:
    """Mean token loss over `eval_steps` batches of the held-out split (the same batches every time)."""
    batches = open_data(config, config.data.eval_split, seed=0)
    loss_sum, count = 0.0, 0.0
    for _, batch in zip(range(config.train.eval_steps), batches):  # a small split may end sooner
        loss, weight = program.eval(params, global_batch(batch, program.batch_sharding))
        loss_sum, count = loss_sum + float(loss), count + float(weight)
    return loss_sum / max(count, 1.0)


class _Preemption:
    """SIGTERM (how TPU VMs and most schedulers announce preemption) as a flag checked every step.

    With several processes, JAX's coordination service already catches SIGTERM and agrees on a
    step at which every host stops (orbax's `reached_preemption`), so no handler is installed."""

    def __init__(self) -> None:
        self.requested = False
        self._multihost = jax.process_count() > 1
        self._previous = None if self._multihost else signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, *_: Any) -> None:
        self.requested = True

    def reached(self, manager: Any, step: int) -> bool:
        if self._multihost:
            self.requested = self.requested or manager.reached_preemption(step)
        return self.requested

    def restore(self) -> None:
        if not self._multihost:
            signal.signal(signal.SIGTERM, self._previous)


def _loop(config: ml_collections.ConfigDict, program: Program, state: TrainState, batches: Iterator,
          manager: Any, writer: MetricsWriter, preemption: "_Preemption") -> tuple[TrainState, float | None]:
    """Steps from `state.step` to `train.steps`: log, evaluate, checkpoint, stop on preemption."""
    train_cfg, ckpt = config.train, config.checkpoint
    model_config = PhiConfig.from_dict(config.model)
    start = int(state.step)
    tokens_per_step = train_cfg.global_batch_size * train_cfg.seq_len
    flops_token = flops_per_token(model_config, train_cfg.seq_len)
    peak = peak_flops_per_device(jax.devices()[0], train_cfg.peak_flops_per_device, model_config.dtype)
    schedule = learning_rate_schedule(train_cfg)
    eval_loss = None
    timer_start, timer_step = time.perf_counter(), start
    loss_sum, logged_step = 0.0, start  # the logged loss is the mean since the last log line
    for step in range(start + 1, train_cfg.steps + 1):
        batch = global_batch(next(batches), program.batch_sharding)
        data_state = batches.get_state()
        state, metrics = program.step(state, batch)
        loss_sum = loss_sum + metrics["loss"]  # stays on the device: no wait for the step
        if step == start + 1:  # throughput starts after compilation
            jax.block_until_ready(metrics)
            timer_start, timer_step = time.perf_counter(), step
        if step % train_cfg.log_every == 0 or step == train_cfg.steps:
            values = {"loss": float(loss_sum) / (step - logged_step), "lr": float(schedule(step - 1)),
                      "grad_norm": float(metrics["grad_norm"])}
            loss_sum, logged_step = 0.0, step
            eta = None
            if step > timer_step:
                seconds_per_step = (time.perf_counter() - timer_start) / (step - timer_step)
                values["tokens_per_sec"] = tokens_per_step / seconds_per_step
                values["mfu"] = mfu(values["tokens_per_sec"], flops_token, jax.device_count(), peak)
                eta = seconds_per_step * (train_cfg.steps - step)
            memory = peak_memory_bytes(jax.local_devices()[0])
            if memory is not None:
                values["peak_memory_gib"] = memory / 2**30
            writer.write(step, values, eta)
        if train_cfg.eval_every and (step % train_cfg.eval_every == 0 or step == train_cfg.steps):
            eval_loss = evaluate(config, program, state.params)
            writer.write(step, {"eval_loss": eval_loss})
        stop = preemption.reached(manager, step)
        train_checkpoint.save(manager, state, model_config, data_state, ckpt.every_steps,
                              force=stop or step == train_cfg.steps)
        if stop:
            print(f"preempted: saved step {step}, exiting", file=sys.stderr, flush=True)
            break
        if step % train_cfg.log_every == 0:  # the next interval measures training alone
            timer_start, timer_step = time.perf_counter(), step
    return state, eval_loss


def train(config: ml_collections.ConfigDict) -> dict[str, Any]:
    """Runs (or resumes) training to `train.steps`; returns a summary of the run."""
    model_config = check_config(config)
    workdir, train_cfg = config.workdir, config.train
    is_main = jax.process_index() == 0
    batches = open_data(config, "train", seed=train_cfg.seed)
    vocabulary_files, vocabulary = vocabulary_to_carry(_vocabularies().vocabulary_path(config.data.vocabulary))
    if vocabulary.vocab_size > model_config.vocab_size:
        raise ConfigError(f"the data's vocabulary has {vocabulary.vocab_size} tokens, model.vocab_size is only "
                          f"{model_config.vocab_size}")
    mesh = sharding.make_mesh(config.mesh)
    ckpt = config.checkpoint
    manager = train_checkpoint.make_manager(workdir, ckpt.keep, ckpt.permanent_every_steps, ckpt.use_async)
    try:
        train_checkpoint.carry_vocabulary(str(manager.directory), vocabulary_files, vocabulary)
    except VocabularyMismatchError as error:
        manager.close()
        raise ConfigError(str(error)) from error
    writer = MetricsWriter(workdir, train_cfg.steps, enabled=is_main)
    preemption = _Preemption()

    try:
        program = build(config, model_config, mesh)
        state, data_state, resumed = initial_state(config, program, manager)
        if data_state is not None:
            batches.set_state(data_state)
        elif resumed:  # another host count: the saved positions do not apply, so a new order
            batches = open_data(config, "train", seed=train_cfg.seed + int(state.step))
        start = int(state.step)
        if is_main:  # only now: a relaunch that cannot resume leaves the config of the checkpoints' run
            (epath.Path(workdir) / "config.json").write_text(config.to_json(indent=2))
            print(f"training {model_config.num_params():,} parameters on mesh {dict(mesh.shape)} "
                  f"from step {start} to {train_cfg.steps}", file=sys.stderr, flush=True)
        with sharding.activate(mesh):  # the rules and mesh that the model's activation constraints use
            state, eval_loss = _loop(config, program, state, batches, manager, writer, preemption)
        manager.wait_until_finished()
    finally:
        manager.close()
        writer.close()
        preemption.restore()
    return {"start_step": start, "step": int(state.step), "eval_loss": eval_loss, "preempted": preemption.requested,
            "checkpoint_dir": str(manager.directory), "workdir": workdir}


def distributed_arguments(environ: Mapping[str, str]) -> dict[str, int] | None:
    """The arguments of `jax.distributed.initialize()` when this is one of several processes, else
    None. JAX finds its peers itself on TPU VMs (metadata server), GKE, SLURM and Open MPI; GPU
    hosts started by hand name the coordinator in JAX_COORDINATOR_ADDRESS (read by JAX) and give
    JAX_NUM_PROCESSES and JAX_PROCESS_ID. tpu/launch.sh sets PHI1_DISTRIBUTED=1, since a TPU VM's
    shell carries no sign of the other workers."""
    if not (environ.get("PHI1_DISTRIBUTED") == "1" or "," in environ.get("TPU_WORKER_HOSTNAMES", "")
            or environ.get("JAX_COORDINATOR_ADDRESS") or int(environ.get("SLURM_NTASKS", "1")) > 1):
        return None
    names = {"num_processes": "JAX_NUM_PROCESSES", "process_id": "JAX_PROCESS_ID"}
    try:
        return {argument: int(environ[name]) for argument, name in names.items() if environ.get(name)}
    except ValueError as error:
        raise ConfigError(f"JAX_NUM_PROCESSES and JAX_PROCESS_ID must be integers: {error}") from error


def _initialize_distributed() -> None:
    try:
        arguments = distributed_arguments(os.environ)
    except ConfigError as error:
        sys.exit(f"phi1_jax.train: error: {error}")
    if arguments is not None:
        jax.distributed.initialize(**arguments)


def main(argv: list[str]) -> None:
    logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; overrides look like --config.train.lr=3e-4")
    if CONFIG.value is None:
        raise app.UsageError("--config=configs/<name>.py is required")
    _initialize_distributed()
    try:
        summary = train(CONFIG.value)
    except (ConfigError, train_checkpoint.RestoreError) as error:
        sys.exit(f"phi1_jax.train: error: {error}")
    print(f"done: step {summary['step']}, checkpoints in {summary['checkpoint_dir']}", file=sys.stderr)


def parse_flags(argv: list[str], program: str = "phi1_jax.train") -> list[str]:
    return config_cli.parse_flags(argv, program)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
