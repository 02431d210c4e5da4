"""Training checkpoints: `workdir/checkpoints/<step>/` written by an orbax `CheckpointManager`.

Each step holds the items of `phi1_jax.checkpoint` (`params`, `model_config`), so `load_model`,
evaluation and conversion read a training checkpoint as they read any other, plus:
- `opt_state`:  the optimizer state (Adam moments, schedule count),
- `progress`:   the step and the dropout RNG,
- `data_state`: every host's data iterator position (`TrainIterator.get_state()`), so a restart
                continues on exactly the batches it would have seen.

The training vocabulary travels in `checkpoints/tokenizer/` (`carry_vocabulary`, see
`phi1_jax.checkpoint`), written before the first save; a relaunch that configures another
vocabulary stops.

Saving is asynchronous (config.checkpoint.use_async); `keep` recent steps are kept, plus every step
that is a multiple of `permanent_every_steps`. Restoring reads onto whatever shardings the caller
asks for, so a checkpoint written on one mesh continues on another.

Restoring never deletes anything. A damaged step (half-written: an item without its metadata or
data, unreadable metadata, missing or corrupt array data) is moved aside to
`checkpoints/<step>.damaged-<UTC time>` with a warning, and the step before it is tried. Any other
failure (the checkpoint's model shape differs from the config, the optimizer state does not fit, an
item is missing, the checkpoint was written by another number of hosts, an I/O error) raises
`RestoreError` naming the step, the cause and the fix, before any training and with every
checkpoint left as it was. `allow_host_count_change` resumes a checkpoint of another host count on
purpose: parameters, optimizer state, step and RNG are kept; the data position cannot be mapped, so
data restarts in a new order (seeded by the step): not the run an unchanged host count would give.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Mapping, NamedTuple, Optional, Sequence

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from jax.experimental import multihost_utils

from phi1_jax.checkpoint import (MODEL_CONFIG, PARAMS, VocabularyMismatchError, VocabularyRecord, read_vocabulary,
                                 write_vocabulary)
from phi1_jax.model_config import PhiConfig
from phi1_jax.train_step import TrainState

OPT_STATE = "opt_state"
PROGRESS = "progress"
DATA_STATE = "data_state"

PYTREE_ITEMS = (PARAMS, OPT_STATE, PROGRESS)
JSON_ITEMS = (MODEL_CONFIG, DATA_STATE)
# tensorstore's status codes for array data that is not there or does not decode: damage, unlike
# UNAVAILABLE / DEADLINE_EXCEEDED / PERMISSION_DENIED, which a retry or a fix of access can cure.
_DAMAGE_CODES = ("NOT_FOUND", "DATA_LOSS", "OUT_OF_RANGE")

log = logging.getLogger(__name__)


class RestoreError(RuntimeError):
    """A checkpoint that exists but cannot resume this run; the message names the step, the cause and
    the fix. Nothing was changed on disk."""


class Restored(NamedTuple):
    state: TrainState
    data_state: Optional[dict[str, Any]]  # None: the data position does not apply (host count changed)


class _Damaged(Exception):
    """A step that is not a whole checkpoint (half-written or unreadable)."""


def make_manager(workdir: str, keep: int, permanent_every_steps: int, use_async: bool) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep if keep > 0 else None,
        keep_period=permanent_every_steps or None,
        enable_async_checkpointing=use_async,
        cleanup_tmp_directories=True,  # debris of a save that a kill interrupted
    )
    root = workdir if "://" in workdir else os.path.abspath(workdir)  # gs:// stays as it is
    return ocp.CheckpointManager(f"{root}/checkpoints", options=options)


def save(manager: ocp.CheckpointManager, state: TrainState, config: PhiConfig,
         data_state: Mapping[str, Any], every_steps: int, *, force: bool = False) -> bool:
    """Starts saving `state` when its step is a multiple of `every_steps` or `force` (the last step,
    preemption), in the background when async; False when no save was due."""
    step = int(state.step)
    if not (force or step % every_steps == 0):
        return False
    states = _gather_data_states(data_state)
    return manager.save(step, force=True, args=ocp.args.Composite(**{
        PARAMS: ocp.args.StandardSave(state.params),
        MODEL_CONFIG: ocp.args.JsonSave(config.to_dict()),
        OPT_STATE: ocp.args.StandardSave(state.opt_state),
        PROGRESS: ocp.args.StandardSave({"step": state.step, "rng": state.rng}),
        DATA_STATE: ocp.args.JsonSave({"per_process": states}),
    }))


def carry_vocabulary(root: str, files: Sequence[str], record: VocabularyRecord) -> None:
    """Writes the run's vocabulary into `root/tokenizer/` (main process) unless it is there; raises
    VocabularyMismatchError when the checkpoints there were trained with another one."""
    carried = read_vocabulary(root)
    if carried is not None:
        if carried[1].sha256 != record.sha256:
            raise VocabularyMismatchError(
                f"the checkpoints in {root} were trained with the vocabulary {carried[1].file} (sha256 "
                f"{carried[1].sha256[:12]}..., {carried[1].vocab_size} tokens); this run configures {record.file} "
                f"(sha256 {record.sha256[:12]}..., {record.vocab_size} tokens): set data.vocabulary to the "
                "checkpoints' one or use another workdir")
        return
    if jax.process_index() == 0:
        write_vocabulary(root, files, record)


def restore_latest(manager: ocp.CheckpointManager, abstract_state: TrainState, config: PhiConfig, *,
                   allow_host_count_change: bool = False) -> Optional[Restored]:
    """The newest step that restores, onto the shardings of `abstract_state` (ShapeDtypeStructs),
    or None when there is no checkpoint. Damaged steps are moved aside; anything else that stops a
    step from resuming this run raises RestoreError (see the module docstring)."""
    for step in sorted(manager.all_steps(), reverse=True):
        try:
            return _restore(manager, step, abstract_state, config, allow_host_count_change)
        except _Damaged as damage:
            _move_aside(manager, step, str(damage))
    return None


def _step_dir(manager: ocp.CheckpointManager, step: int) -> epath.Path:
    return epath.Path(manager.directory) / str(step)


def _check_whole(manager: ocp.CheckpointManager, step: int) -> None:
    """Raises _Damaged when step's files are not those of a finished save, RestoreError when an
    item is missing from an otherwise whole step."""
    directory = _step_dir(manager, step)
    missing_items = [item for item in PYTREE_ITEMS + JSON_ITEMS if not (directory / item).is_dir()]
    if missing_items:
        raise RestoreError(f"checkpoint step {step} ({directory}) has no {', '.join(missing_items)}: it was not "
                           "written by phi1_jax.train (e.g. it came from convert from-hf). Fix: start finetuning "
                           "from it with --config.train.init_from, in another workdir")
    for item in PYTREE_ITEMS:
        for name in ("_METADATA", "manifest.ocdbt"):
            if not (directory / item / name).exists():
                raise _Damaged(f"{item}/{name} is missing")
        try:
            json.loads((directory / item / "_METADATA").read_text())
        except ValueError as error:
            raise _Damaged(f"{item}/_METADATA is unreadable ({error})") from error
    for item in JSON_ITEMS:
        if not (directory / item / "metadata").exists():
            raise _Damaged(f"{item}/metadata is missing")


def _restore(manager: ocp.CheckpointManager, step: int, abstract_state: TrainState, config: PhiConfig,
             allow_host_count_change: bool) -> Restored:
    _check_whole(manager, step)
    try:
        saved = manager.restore(step, args=ocp.args.Composite(**{MODEL_CONFIG: ocp.args.JsonRestore(),
                                                                  DATA_STATE: ocp.args.JsonRestore()}))
    except ValueError as error:  # JSON that does not decode
        raise _Damaged(f"{MODEL_CONFIG} or {DATA_STATE} is unreadable ({error})") from error
    except OSError as error:
        raise _stop(step, f"reading it failed: {type(error).__name__}: {error}",
                    "make the checkpoint readable (access, network) and relaunch") from error
    saved_config = PhiConfig.from_dict(saved[MODEL_CONFIG])
    different = saved_config.shape_differences(config)
    if saved_config.param_dtype != config.param_dtype:
        different["param_dtype"] = (saved_config.param_dtype, config.param_dtype)
    if different:
        changes = ", ".join(f"{k}={saved_v} (this run: {ours})" for k, (saved_v, ours) in different.items())
        raise _stop(step, f"it holds a model with {changes}",
                    "relaunch with the config it was written with (workdir/config.json, or the step's "
                    f"{MODEL_CONFIG}), or train this config in another workdir")
    per_process = saved[DATA_STATE]["per_process"]
    hosts = len(per_process)
    if hosts != jax.process_count() and not allow_host_count_change:
        raise _stop(step, f"it was written by {hosts} hosts and this run has {jax.process_count()}, so the saved "
                    "data positions do not map onto this run's hosts",
                    f"relaunch on {hosts} hosts, or resume anyway with "
                    "--config.checkpoint.allow_host_count_change=True (parameters and optimizer state are kept, the "
                    "data restarts in a new order: not exactly the run it would have been)")
    progress = {"step": abstract_state.step, "rng": abstract_state.rng}
    try:
        restored = manager.restore(step, args=ocp.args.Composite(**{
            PARAMS: ocp.args.StandardRestore(abstract_state.params),
            OPT_STATE: ocp.args.StandardRestore(abstract_state.opt_state),
            PROGRESS: ocp.args.StandardRestore(progress),
        }))
    except (ValueError, OSError) as error:
        if str(error).startswith(_DAMAGE_CODES):
            raise _Damaged(f"its array data cannot be read ({str(error)[:300]})") from error
        raise _stop(step, f"{type(error).__name__}: {str(error)[:500]}",
                    "if the optimizer settings or parameter layout changed, relaunch with the config it was "
                    "written with (workdir/config.json); if it is a read error, fix access and relaunch") from error
    state = TrainState(step=restored[PROGRESS]["step"], params=restored[PARAMS],
                       opt_state=restored[OPT_STATE], rng=restored[PROGRESS]["rng"])
    if hosts != jax.process_count():
        log.warning("checkpoint step %d was written by %d hosts, this run has %d: parameters and optimizer "
                    "state resume, the data restarts in a new order", step, hosts, jax.process_count())
        return Restored(state, None)
    return Restored(state, per_process[jax.process_index()])


def _stop(step: int, cause: str, fix: str) -> RestoreError:
    return RestoreError(f"cannot resume from checkpoint step {step}: {cause}. Fix: {fix}. "
                        "The checkpoints are left as they were.")


def _move_aside(manager: ocp.CheckpointManager, step: int, reason: str) -> None:
    """Renames a damaged step to `<step>.damaged-<UTC time>` (orbax no longer sees it as a step, and
    training can write the step again), on the main process; every process waits for it."""
    source = _step_dir(manager, step)
    target = source.parent / f"{step}.damaged-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    if jax.process_index() == 0:
        try:
            source.rename(target)
        except OSError as error:
            raise _stop(step, f"it is damaged ({reason}) and moving it aside to {target} failed ({error})",
                        f"move or remove {source} yourself and relaunch") from error
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(f"moved aside damaged checkpoint step {step}")
    manager.reload()
    log.warning("checkpoint step %d is damaged (%s): moved it to %s; trying the previous step", step, reason, target)


def _gather_data_states(data_state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every host's data iterator state, in process order (JSON travels as padded bytes)."""
    if jax.process_count() == 1:
        return [dict(data_state)]
    encoded = np.frombuffer(json.dumps(data_state).encode(), np.uint8)
    lengths = multihost_utils.process_allgather(np.array([encoded.size]))
    padded = np.zeros(int(lengths.max()), np.uint8)
    padded[: encoded.size] = encoded
    gathered = multihost_utils.process_allgather(padded)
    return [json.loads(bytes(row[: int(n)]).decode()) for row, n in zip(gathered, lengths.reshape(-1))]
