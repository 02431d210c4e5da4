"""Model checkpoints on disk: an orbax `CheckpointManager` directory whose steps hold the items
`params` and `model_config` (plus whatever else training saves beside them).

Written by `phi1_jax.train` (`workdir/checkpoints/<step>/`) and by `phi1_jax.convert from-hf`;
read by `phi1_jax.convert to-hf`, evaluation and finetuning through `load_model`. A tokenizer that
travels with the model lives in `<root>/tokenizer/`.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, Optional

import jax
import orbax.checkpoint as ocp
from etils import epath

from phi1_jax.model import init_params
from phi1_jax.model_config import PhiConfig

PARAMS = "params"
MODEL_CONFIG = "model_config"
TOKENIZER_DIR = "tokenizer"


def _resolve(path: str) -> tuple[epath.Path, Optional[int]]:
    """(manager root, step or None for the latest) for a workdir, a checkpoints root or a step dir."""
    path = epath.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    if (path / "checkpoints").is_dir():
        return path / "checkpoints", None
    if (path / PARAMS).is_dir() and path.name.isdigit():
        return path.parent, int(path.name)
    return path, None


def save_model(directory: str, config: PhiConfig, params: Any, *, step: int = 0,
               tokenizer_dir: Optional[str] = None) -> None:
    """Writes `params` and `config` as step `step` of a new or existing checkpoint directory."""
    with ocp.CheckpointManager(os.path.abspath(directory)) as manager:
        manager.save(step, args=ocp.args.Composite(**{
            PARAMS: ocp.args.StandardSave(params),
            MODEL_CONFIG: ocp.args.JsonSave(config.to_dict()),
        }))
        manager.wait_until_finished()
    if tokenizer_dir:
        shutil.copytree(tokenizer_dir, os.path.join(directory, TOKENIZER_DIR), dirs_exist_ok=True)


def load_model(path: str, *, shardings: Any = None) -> tuple[PhiConfig, Any]:
    """(config, params) of the latest step under `path` (or of the step dir `path` names)."""
    root, step = _resolve(path)
    with ocp.CheckpointManager(root.resolve()) as manager:
        step = manager.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint steps under {root}")
        config_item = manager.restore(step, args=ocp.args.Composite(**{MODEL_CONFIG: ocp.args.JsonRestore()}))
        config = PhiConfig.from_dict(config_item[MODEL_CONFIG])
        abstract = jax.eval_shape(lambda: init_params(config, jax.random.key(0)))
        if shardings is not None:
            abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                                    abstract, shardings)
        restored = manager.restore(step, args=ocp.args.Composite(**{PARAMS: ocp.args.StandardRestore(abstract)}))
    return config, restored[PARAMS]


def tokenizer_path(path: str) -> Optional[str]:
    """The tokenizer directory carried by the checkpoint at `path`, if any."""
    root, _ = _resolve(path)
    for candidate in (root / TOKENIZER_DIR, root.parent / TOKENIZER_DIR):
        if candidate.is_dir():
            return str(candidate)
    return None
