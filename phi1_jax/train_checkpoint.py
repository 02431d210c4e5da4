"""Training checkpoints: `workdir/checkpoints/<step>/` written by an orbax `CheckpointManager`.

Each step holds the items of `phi1_jax.checkpoint` (`params`, `model_config`), so `load_model`,
evaluation and conversion read a training checkpoint as they read any other, plus:
- `opt_state`:  the optimizer state (Adam moments, schedule count),
- `progress`:   the step and the dropout RNG,
- `data_state`: every host's data iterator position (`TrainIterator.get_state()`), so a restart
                continues on exactly the batches it would have seen.

Saving is asynchronous (config.checkpoint.use_async); `keep` recent steps are kept, plus every step
that is a multiple of `permanent_every_steps`. Restoring reads onto whatever shardings the caller
asks for, so a checkpoint written on one mesh continues on another. A latest step that fails to
restore (half-written, corrupt) is skipped with a warning and the one before it is used.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, Mapping, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils

from phi1_jax.checkpoint import MODEL_CONFIG, PARAMS
from phi1_jax.model_config import PhiConfig
from phi1_jax.train_step import TrainState

OPT_STATE = "opt_state"
PROGRESS = "progress"
DATA_STATE = "data_state"

log = logging.getLogger(__name__)


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


def restore_latest(manager: ocp.CheckpointManager, abstract_state: TrainState
                   ) -> Optional[tuple[TrainState, dict[str, Any]]]:
    """(state, this host's data state) of the newest step that restores, onto the shardings of
    `abstract_state` (ShapeDtypeStructs); None when there is no checkpoint at all."""
    steps = sorted(manager.all_steps(), reverse=True)
    for step in steps:
        try:
            return _restore(manager, step, abstract_state)
        except Exception as error:  # orbax raises many kinds for a damaged step; any of them means "skip"
            # Deleted, since training will write this step again and orbax refuses to overwrite it.
            log.warning("checkpoint step %d cannot be restored (%s: %s); deleting it and trying the "
                        "previous one", step, type(error).__name__, error)
            manager.delete(step)
    if steps:
        raise RuntimeError(f"none of the checkpoints {steps} under {manager.directory} can be restored")
    return None


def _restore(manager: ocp.CheckpointManager, step: int, abstract_state: TrainState
             ) -> tuple[TrainState, dict[str, Any]]:
    progress = {"step": abstract_state.step, "rng": abstract_state.rng}
    restored = manager.restore(step, args=ocp.args.Composite(**{
        PARAMS: ocp.args.StandardRestore(abstract_state.params),
        OPT_STATE: ocp.args.StandardRestore(abstract_state.opt_state),
        PROGRESS: ocp.args.StandardRestore(progress),
        DATA_STATE: ocp.args.JsonRestore(),
    }))
    per_process = restored[DATA_STATE]["per_process"]
    if len(per_process) != jax.process_count():
        raise ValueError(f"checkpoint was written by {len(per_process)} hosts, this run has "
                         f"{jax.process_count()}: the data positions do not map onto it")
    state = TrainState(step=restored[PROGRESS]["step"], params=restored[PARAMS],
                       opt_state=restored[OPT_STATE], rng=restored[PROGRESS]["rng"])
    return state, per_process[jax.process_index()]


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
