"""Model checkpoints on disk: an orbax `CheckpointManager` directory whose steps hold the items
`params` and `model_config` (plus whatever else training saves beside them).

Written by `phi1_jax.train` (`workdir/checkpoints/<step>/`) and by `phi1_jax.convert from-hf`;
read by `phi1_jax.convert to-hf`, evaluation and finetuning through `load_model`.

The vocabulary travels with the model in `<root>/tokenizer/`: the vocabulary file itself (a
SentencePiece `.model` or a Hugging Face `tokenizer.json`, with its companions) and
`vocabulary.json`, a `VocabularyRecord` of the file's name, size, special ids and sha256, written
when the root is first written. Readers check the file against the record and the record against
the model, so a checkpoint is never decoded with a vocabulary it was not trained with.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, Optional, Protocol, Sequence

import jax
import orbax.checkpoint as ocp
from etils import epath

from phi1_jax.model import init_params
from phi1_jax.model_config import PhiConfig

PARAMS = "params"
MODEL_CONFIG = "model_config"
TOKENIZER_DIR = "tokenizer"
VOCABULARY_RECORD = "vocabulary.json"


class VocabularyMismatchError(ValueError):
    """A vocabulary that is not the one a checkpoint was trained with; the message says which and why."""


class Vocabulary(Protocol):
    """What a record needs of a loaded vocabulary (a seqio Vocabulary has it)."""

    vocab_size: int
    eos_id: int
    pad_id: int
    bos_id: Optional[int]


@dataclasses.dataclass(frozen=True)
class VocabularyRecord:
    """The vocabulary a checkpoint was trained with, as `<root>/tokenizer/vocabulary.json` says."""

    file: str  # the vocabulary file's name inside <root>/tokenizer/
    vocab_size: int
    eos_id: int
    pad_id: int
    bos_id: Optional[int]
    sha256: str

    @classmethod
    def of(cls, path: str, vocabulary: Vocabulary, **special_ids: Optional[int]) -> "VocabularyRecord":
        """The record of the vocabulary file `path` as loaded into `vocabulary`; `special_ids`
        (eos_id, pad_id, bos_id) override the vocabulary's own, e.g. with those a HF
        tokenizer_config.json names."""
        ids = {"eos_id": vocabulary.eos_id, "pad_id": vocabulary.pad_id, "bos_id": vocabulary.bos_id}
        ids.update({k: v for k, v in special_ids.items() if v is not None})
        # SentencePiece says -1 for a token it does not have.
        ids = {k: None if v is None or v < 0 else int(v) for k, v in ids.items()}
        return cls(file=os.path.basename(path), vocab_size=int(vocabulary.vocab_size), sha256=fingerprint(path), **ids)


def vocabulary_to_carry(file: str, companions: Sequence[str] = (), **special_ids: Optional[int]
                        ) -> tuple[list[str], VocabularyRecord]:
    """The files and record `save_model` / `write_vocabulary` carry for the vocabulary file `file`
    (a SentencePiece `.model` or a `tokenizer.json`), loaded as training loads it."""
    from data_pipeline.seqio_data.vocabularies import load_vocabulary  # TensorFlow: only imported to write a vocabulary

    return [file, *companions], VocabularyRecord.of(file, load_vocabulary(file), **special_ids)


def fingerprint(path: str) -> str:
    """sha256 of a file's bytes (local or gs://)."""
    return hashlib.sha256(epath.Path(path).read_bytes()).hexdigest()


def write_vocabulary(root: str, files: Sequence[str], record: VocabularyRecord) -> str:
    """Copies `files` (the vocabulary file named by `record`, plus companions such as a HF
    tokenizer_config.json) into `<root>/tokenizer/` with the record; returns that directory."""
    directory = epath.Path(root) / TOKENIZER_DIR
    directory.mkdir(parents=True, exist_ok=True)
    for file in files:
        (directory / os.path.basename(file)).write_bytes(epath.Path(file).read_bytes())
    # The record last: a directory with a record is complete.
    (directory / VOCABULARY_RECORD).write_text(json.dumps(dataclasses.asdict(record), indent=2))
    return str(directory)


def read_vocabulary(path: str) -> Optional[tuple[str, VocabularyRecord]]:
    """(vocabulary file, its record) carried by the checkpoint at `path`, or None when it carries none."""
    directory = tokenizer_path(path)
    if directory is None or not (epath.Path(directory) / VOCABULARY_RECORD).exists():
        return None
    record_path = epath.Path(directory) / VOCABULARY_RECORD
    try:
        record = VocabularyRecord(**json.loads(record_path.read_text()))
    except (TypeError, ValueError) as error:
        raise VocabularyMismatchError(f"{record_path} is not a vocabulary record: {error}") from error
    return str(epath.Path(directory) / record.file), record


def check_vocabulary(file: str, record: VocabularyRecord, model_vocab_size: int) -> None:
    """Raises VocabularyMismatchError unless `file` is the recorded vocabulary and fits the model."""
    if not epath.Path(file).exists():
        raise VocabularyMismatchError(f"the checkpoint's vocabulary file {file} is missing")
    actual = fingerprint(file)
    if actual != record.sha256:
        raise VocabularyMismatchError(
            f"{file} is not the vocabulary the model was trained with: its sha256 is {actual[:12]}..., "
            f"{VOCABULARY_RECORD} records {record.sha256[:12]}...; put the training vocabulary back or pass it "
            "explicitly (--tokenizer)")
    check_fits(record.vocab_size, model_vocab_size, file)


def check_fits(vocab_size: int, model_vocab_size: int, what: str) -> None:
    """A vocabulary may be smaller than the model's embedding table (padded, as phi-1's is), never larger."""
    if vocab_size > model_vocab_size:
        raise VocabularyMismatchError(f"the vocabulary {what} has {vocab_size} tokens but the model has only "
                                      f"{model_vocab_size}: it is not the vocabulary this model was trained with")


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
               vocabulary: Optional[tuple[Sequence[str], VocabularyRecord]] = None) -> None:
    """Writes `params` and `config` as step `step` of a new or existing checkpoint directory, and
    the vocabulary (its files, its record) beside them."""
    if vocabulary is not None:
        check_fits(vocabulary[1].vocab_size, config.vocab_size, vocabulary[1].file)
    with ocp.CheckpointManager(os.path.abspath(directory)) as manager:
        manager.save(step, args=ocp.args.Composite(**{
            PARAMS: ocp.args.StandardSave(params),
            MODEL_CONFIG: ocp.args.JsonSave(config.to_dict()),
        }))
        manager.wait_until_finished()
    if vocabulary is not None:
        write_vocabulary(directory, *vocabulary)


def load_model(path: str, *, shardings: Any = None) -> tuple[PhiConfig, Any]:
    """(config, params) of the latest step under `path` (or of the step dir `path` names), on
    `shardings` or else on this process's first device, whatever mesh saved them; refuses a
    checkpoint whose recorded vocabulary does not fit the model."""
    root, step = _resolve(path)
    carried = read_vocabulary(path)
    with ocp.CheckpointManager(root.resolve()) as manager:
        step = manager.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint steps under {root}")
        config_item = manager.restore(step, args=ocp.args.Composite(**{MODEL_CONFIG: ocp.args.JsonRestore()}))
        config = PhiConfig.from_dict(config_item[MODEL_CONFIG])
        if carried is not None:
            check_fits(carried[1].vocab_size, config.vocab_size, carried[0])
        abstract = jax.eval_shape(lambda: init_params(config, jax.random.key(0)))
        if shardings is None:
            # Otherwise orbax restores the layout the checkpoint was saved with, which needs that
            # run's devices: a pod's checkpoint would not load on a laptop.
            shardings = jax.tree.map(lambda _: jax.sharding.SingleDeviceSharding(jax.local_devices()[0]),
                                     abstract)
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
