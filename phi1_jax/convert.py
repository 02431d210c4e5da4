"""Checkpoint conversion between Hugging Face Phi directories and this project, both ways: the
bridge to PyTorch users (DESIGN.md "Data flow": convert -> HF PyTorch).

    from_hf(path) -> (PhiConfig, params)         to_hf(config, params, out_dir)
    python -m phi1_jax.convert from-hf HF_DIR CKPT_DIR
    python -m phi1_jax.convert to-hf CKPT_DIR HF_DIR [--max-shard-size 5GB] [--tokenizer FILE_OR_DIR]

to-hf writes what `AutoTokenizer` and `PhiForCausalLM` / `AutoModelForCausalLM.from_pretrained(HF_DIR)`
load alone: `config.json` (with the vocabulary's bos/eos/pad ids), `generation_config.json`,
`model.safetensors` (or shards `model-0000i-of-0000n.safetensors` and their index once the weights
pass `--max-shard-size`, as `save_pretrained` does) and the tokenizer (`phi1_jax.hf_tokenizer`).

from-hf reads `config.json` in the transformers v5 form (`rope_parameters`) and the older top-level
form, weights as `model.safetensors`, sharded safetensors, or `pytorch_model.bin` (sharded too), and
the legacy phi-1 remote-code layouts (`phi-msft`, `mixformer-sequential`) whose attention has one
fused `Wqkv`; the tokenizer files travel into the checkpoint with their vocabulary record. Every
tensor is checked against the shape the config implies before anything is written; outputs are
assembled in a temporary sibling directory and moved into place only when complete.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from typing import Any, Callable, Iterator, NamedTuple, Optional

import numpy as np

from phi1_jax.checkpoint import VocabularyMismatchError, VocabularyRecord
from phi1_jax.hf_tokenizer import TOKENIZER_FILES, write_hf_tokenizer
from phi1_jax.layer_stacking import unstack_layers
from phi1_jax.model_config import PhiConfig

# transformers' `save_pretrained` default: weights past it are sharded.
DEFAULT_MAX_SHARD_SIZE = "50GB"
_SIZE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
               "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}
_GELU_TANH = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")
_IGNORED_BUFFERS = re.compile(r"(rotary_emb\.inv_freq|\.attn\.bias|\.attn\.masked_bias)$")


class ConversionError(ValueError):
    """The input is not a Phi model this converter can read exactly; the message says why."""


# ---------------------------------------------------------------------------------------- config

def config_from_hf(hf: dict[str, Any]) -> PhiConfig:
    """PhiConfig from a Hugging Face `config.json` dict (modern, v5 or legacy remote-code)."""
    model_type = hf.get("model_type")
    if model_type in ("phi-msft", "mixformer-sequential"):
        return _legacy_config(hf)
    if model_type != "phi":
        raise ConversionError(
            f"unknown architecture: model_type={model_type!r}, architectures={hf.get('architectures')}; "
            "expected a Phi model ('phi', or legacy 'phi-msft' / 'mixformer-sequential')")
    rope = dict(hf.get("rope_parameters") or {})
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type != "default" or hf.get("rope_scaling"):
        raise ConversionError(f"rope type {rope_type!r} / rope_scaling {hf.get('rope_scaling')} is not supported")
    unsupported = {
        "hidden_act": (hf.get("hidden_act", "gelu_new"), lambda v: v in _GELU_TANH),
        "qk_layernorm": (hf.get("qk_layernorm", False), lambda v: not v),
        "tie_word_embeddings": (hf.get("tie_word_embeddings", False), lambda v: not v),
    }
    for key, (value, ok) in unsupported.items():
        if not ok(value):
            raise ConversionError(f"config.json {key}={value!r} is not the phi architecture this model implements")
    return PhiConfig(
        vocab_size=hf["vocab_size"],
        hidden_size=hf["hidden_size"],
        intermediate_size=hf["intermediate_size"],
        num_layers=hf["num_hidden_layers"],
        num_heads=hf["num_attention_heads"],
        num_kv_heads=hf.get("num_key_value_heads") or 0,
        head_dim=hf.get("head_dim") or 0,
        partial_rotary_factor=rope.get("partial_rotary_factor", hf.get("partial_rotary_factor", 0.5)),
        rope_theta=rope.get("rope_theta", hf.get("rope_theta", 10000.0)),
        layer_norm_eps=hf.get("layer_norm_eps", 1e-5),
        max_position_embeddings=hf.get("max_position_embeddings", 2048),
        embd_dropout=hf.get("embd_pdrop", 0.0),
        resid_dropout=hf.get("resid_pdrop", 0.0),
        attention_dropout=hf.get("attention_dropout") or 0.0,
        initializer_range=hf.get("initializer_range", 0.02),
    )


def _legacy_config(hf: dict[str, Any]) -> PhiConfig:
    hidden, heads = hf["n_embd"], hf["n_head"]
    head_dim = hidden // heads
    activation = hf.get("activation_function", "gelu_new")
    if activation not in _GELU_TANH:
        raise ConversionError(f"config.json activation_function={activation!r} is not gelu with tanh approximation")
    return PhiConfig(
        vocab_size=hf["vocab_size"],
        hidden_size=hidden,
        intermediate_size=hf.get("n_inner") or 4 * hidden,
        num_layers=hf["n_layer"],
        num_heads=heads,
        num_kv_heads=hf.get("n_head_kv") or 0,
        partial_rotary_factor=hf.get("rotary_dim", head_dim // 2) / head_dim,
        layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5),
        max_position_embeddings=hf.get("n_positions", 2048),
        embd_dropout=hf.get("embd_pdrop", 0.0),
        resid_dropout=hf.get("resid_pdrop", 0.0),
        initializer_range=hf.get("initializer_range", 0.02),
    )


def config_to_hf(config: PhiConfig, vocabulary: Optional[VocabularyRecord] = None) -> dict[str, Any]:
    """The `config.json` transformers' PhiForCausalLM reads; rope settings in both v5 and older form,
    and the special ids of `vocabulary` (without them transformers assumes ids that mean other
    tokens in our vocabularies)."""
    hf = {
        "architectures": ["PhiForCausalLM"],
        "model_type": "phi",
        "vocab_size": config.vocab_size,
        "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "num_key_value_heads": config.kv_heads,
        "hidden_act": "gelu_new",
        "max_position_embeddings": config.max_position_embeddings,
        "initializer_range": config.initializer_range,
        "layer_norm_eps": config.layer_norm_eps,
        "resid_pdrop": config.resid_dropout,
        "embd_pdrop": config.embd_dropout,
        "attention_dropout": config.attention_dropout,
        "qk_layernorm": False,
        "tie_word_embeddings": False,
        "use_cache": True,
        "dtype": "float32",
        "rope_parameters": {"rope_type": "default", "rope_theta": config.rope_theta,
                            "partial_rotary_factor": config.partial_rotary_factor},
        "rope_theta": config.rope_theta,
        "partial_rotary_factor": config.partial_rotary_factor,
    }
    if config.head_dim:
        hf["head_dim"] = config.head_dim
    if vocabulary is not None:
        hf.update(special_ids(vocabulary))
    return hf


def special_ids(vocabulary: VocabularyRecord) -> dict[str, Optional[int]]:
    return {"bos_token_id": vocabulary.bos_id, "eos_token_id": vocabulary.eos_id, "pad_token_id": vocabulary.pad_id}


# ------------------------------------------------------------------------------ tensor mapping

class _Tensor(NamedTuple):
    """One HF tensor: its name, its shape as the config implies, and how it maps to our tree."""

    name: str
    path: tuple[str, ...]
    hf_shape: tuple[int, ...]
    to_ours: Callable[[np.ndarray], np.ndarray]
    to_hf: Callable[[np.ndarray], np.ndarray]


def _tensor_table(config: PhiConfig) -> list[_Tensor]:
    e, m, v, d = config.hidden_size, config.intermediate_size, config.vocab_size, config.head_size
    h, kvh = config.num_heads, config.kv_heads

    def same(x: np.ndarray) -> np.ndarray:
        return x

    def transpose(x: np.ndarray) -> np.ndarray:
        return x.T

    def linear(name: str, path: tuple[str, ...], n_in: int, n_out: int) -> list[_Tensor]:
        return [_Tensor(f"{name}.weight", path + ("kernel",), (n_out, n_in), transpose, transpose),
                _Tensor(f"{name}.bias", path + ("bias",), (n_out,), same, same)]

    def layer_norm(name: str, path: tuple[str, ...]) -> list[_Tensor]:
        return [_Tensor(f"{name}.weight", path + ("scale",), (e,), same, same),
                _Tensor(f"{name}.bias", path + ("bias",), (e,), same, same)]

    def head_projection(name: str, path: tuple[str, ...], heads: int) -> list[_Tensor]:
        return [
            _Tensor(f"{name}.weight", path + ("kernel",), (heads * d, e),
                    lambda w: w.T.reshape(e, heads, d), lambda k: k.reshape(e, heads * d).T),
            _Tensor(f"{name}.bias", path + ("bias",), (heads * d,),
                    lambda b: b.reshape(heads, d), lambda b: b.reshape(heads * d)),
        ]

    table = [_Tensor("model.embed_tokens.weight", ("embed_tokens", "embedding"), (v, e), same, same)]
    for i in range(config.num_layers):
        hf, ours = f"model.layers.{i}", (f"layers_{i}",)
        attn = ours + ("self_attn",)
        table += layer_norm(f"{hf}.input_layernorm", ours + ("input_layernorm",))
        table += head_projection(f"{hf}.self_attn.q_proj", attn + ("q_proj",), h)
        table += head_projection(f"{hf}.self_attn.k_proj", attn + ("k_proj",), kvh)
        table += head_projection(f"{hf}.self_attn.v_proj", attn + ("v_proj",), kvh)
        table += [
            _Tensor(f"{hf}.self_attn.dense.weight", attn + ("dense", "kernel"), (e, h * d),
                    lambda w: w.T.reshape(h, d, e), lambda k: k.reshape(h * d, e).T),
            _Tensor(f"{hf}.self_attn.dense.bias", attn + ("dense", "bias"), (e,), same, same),
        ]
        table += linear(f"{hf}.mlp.fc1", ours + ("mlp", "fc1"), e, m)
        table += linear(f"{hf}.mlp.fc2", ours + ("mlp", "fc2"), m, e)
    table += layer_norm("model.final_layernorm", ("final_layernorm",))
    table += linear("lm_head", ("lm_head",), e, v)
    return table


def _legacy_name_rules(model_type: str, num_layers: int) -> tuple[list[tuple[re.Pattern[str], str]], int]:
    """(pattern -> PhiForCausalLM name template, layer-number offset) for a legacy layout."""
    if model_type == "phi-msft":
        embed, layer, head, offset = r"transformer\.embd\.wte", r"transformer\.h\.(?P<layer>\d+)", r"lm_head", 0
    else:  # mixformer-sequential numbers the embedding as layer 0 and the head as layer n+1
        embed, layer, head, offset = r"layers\.0\.wte", r"layers\.(?P<layer>\d+)", rf"layers\.{num_layers + 1}", 1
    rules = [
        (embed, "model.embed_tokens"),
        (head + r"\.ln", "model.final_layernorm"),
        (head + r"\.linear", "lm_head"),
        (layer + r"\.ln", "model.layers.{layer}.input_layernorm"),
        (layer + r"\.mixer\.Wqkv", "model.layers.{layer}.self_attn.Wqkv"),
        (layer + r"\.mixer\.out_proj", "model.layers.{layer}.self_attn.dense"),
        (layer + r"\.mlp\.fc1", "model.layers.{layer}.mlp.fc1"),
        (layer + r"\.mlp\.fc2", "model.layers.{layer}.mlp.fc2"),
    ]
    return [(re.compile(rf"^{p}\.(?P<param>weight|bias)$"), t + ".{param}") for p, t in rules], offset


def _modernize_legacy(tensors: dict[str, np.ndarray], model_type: str, config: PhiConfig) -> dict[str, np.ndarray]:
    """Legacy remote-code names -> PhiForCausalLM names; the fused Wqkv rows are [q | k | v]."""
    rules, offset = _legacy_name_rules(model_type, config.num_layers)
    modern: dict[str, np.ndarray] = {}
    for name, value in tensors.items():
        for pattern, template in rules:
            match = pattern.match(name)
            if match:
                fields = match.groupdict()
                if "layer" in fields:
                    fields["layer"] = int(fields["layer"]) - offset
                modern[template.format(**fields)] = value
                break
        else:
            modern[name] = value
    q_rows = config.num_heads * config.head_size
    kv_rows = config.kv_heads * config.head_size
    for name in [n for n in modern if ".Wqkv." in n]:
        fused = modern.pop(name)
        if fused.shape[0] != q_rows + 2 * kv_rows:
            raise ConversionError(f"{name}: expected {q_rows + 2 * kv_rows} rows (q, k, v) from config.json, "
                                  f"found shape {tuple(fused.shape)}")
        q, k, v = np.split(fused, [q_rows, q_rows + kv_rows], axis=0)
        for part, value in (("q_proj", q), ("k_proj", k), ("v_proj", v)):
            modern[name.replace("Wqkv", part)] = value
    return modern


# ---------------------------------------------------------------------------------- file I/O

def _weight_files(path: str) -> list[str]:
    for index_name, single in (("model.safetensors.index.json", "model.safetensors"),
                               ("pytorch_model.bin.index.json", "pytorch_model.bin")):
        index = os.path.join(path, index_name)
        if os.path.exists(index):
            with open(index) as f:
                shards = sorted(set(json.load(f)["weight_map"].values()))
            missing = [s for s in shards if not os.path.exists(os.path.join(path, s))]
            if missing:
                raise ConversionError(f"{index} names shards that are not in {path}: {missing}")
            return [os.path.join(path, s) for s in shards]
        if os.path.exists(os.path.join(path, single)):
            return [os.path.join(path, single)]
    raise ConversionError(f"no weights in {path}: expected model.safetensors, model.safetensors.index.json, "
                          "pytorch_model.bin or pytorch_model.bin.index.json")


def _read_file(file: str) -> Iterator[tuple[str, np.ndarray]]:
    if file.endswith(".safetensors"):
        from safetensors import safe_open
        with safe_open(file, framework="flax") as f:
            for name in f.keys():
                yield name, np.asarray(f.get_tensor(name), dtype=np.float32)
        return
    try:
        import torch
    except ImportError as e:
        raise ConversionError(f"reading {file} needs PyTorch: pip install -e '.[convert]'") from e
    for name, tensor in torch.load(file, map_location="cpu", weights_only=True).items():
        yield name, tensor.to(torch.float32).numpy()


def read_hf_tensors(path: str) -> dict[str, np.ndarray]:
    """Every tensor of a HF model directory, as float32 numpy arrays keyed by HF name."""
    tensors: dict[str, np.ndarray] = {}
    for file in _weight_files(path):
        tensors.update(_read_file(file))
    return tensors


def _set(tree: dict[str, Any], path: tuple[str, ...], value: np.ndarray) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _get(tree: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def from_hf(path: str) -> tuple[PhiConfig, dict[str, Any]]:
    """(config, params) of the Hugging Face Phi model in directory `path` (per-layer layout)."""
    config_file = os.path.join(path, "config.json")
    if not os.path.exists(config_file):
        raise ConversionError(f"{config_file} does not exist: not a Hugging Face model directory")
    with open(config_file) as f:
        hf_config = json.load(f)
    config = config_from_hf(hf_config)
    tensors = {k: v for k, v in read_hf_tensors(path).items() if not _IGNORED_BUFFERS.search(k)}
    if hf_config.get("model_type") != "phi":
        tensors = _modernize_legacy(tensors, hf_config["model_type"], config)

    table = _tensor_table(config)
    problems = []
    for tensor in table:
        if tensor.name not in tensors:
            problems.append(f"missing tensor {tensor.name} (expected shape {tensor.hf_shape})")
        elif tuple(tensors[tensor.name].shape) != tensor.hf_shape:
            problems.append(f"{tensor.name}: config.json implies shape {tensor.hf_shape}, "
                            f"the weights have {tuple(tensors[tensor.name].shape)}")
    unexpected = sorted(set(tensors) - {t.name for t in table})
    if unexpected:
        problems.append(f"unexpected tensors {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''} "
                        f"(does config.json say num_hidden_layers={config.num_layers}?)")
    if problems:
        raise ConversionError(f"{path} does not match its config.json: " + "; ".join(problems))

    params: dict[str, Any] = {}
    for tensor in table:
        _set(params, tensor.path, np.ascontiguousarray(tensor.to_ours(tensors[tensor.name])))
    return config, params


def _new_output_dir(out_dir: str) -> str:
    """A temporary sibling of `out_dir` to assemble into; refuses to touch a non-empty `out_dir`."""
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        raise FileExistsError(f"{out_dir} exists and is not an empty directory; refusing to overwrite it")
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    return tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(out_dir)}.partial-")


def _publish(tmp_dir: str, out_dir: str) -> None:
    if os.path.isdir(out_dir):
        os.rmdir(out_dir)
    os.rename(tmp_dir, out_dir)


def parse_size(size: str | int) -> int:
    """Bytes of "5GB", "40KB", "2GiB" (as transformers reads max_shard_size) or of an int."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]I?B|B)?\s*", size.upper())
    if not match:
        raise ValueError(f"size {size!r}: expected a number of bytes or e.g. 5GB, 500MB, 2GiB")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2) or "B"])


def _shards(tensors: dict[str, np.ndarray], max_bytes: int) -> list[dict[str, np.ndarray]]:
    """Tensors in order, cut into shards of at most `max_bytes` (a larger tensor gets a shard of its own)."""
    shards: list[dict[str, np.ndarray]] = [{}]
    size = 0
    for name, value in tensors.items():
        if shards[-1] and size + value.nbytes > max_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = value
        size += value.nbytes
    return shards


def _write_weights(tensors: dict[str, np.ndarray], out_dir: str, max_shard_size: str | int) -> None:
    from safetensors.numpy import save_file

    shards = _shards(tensors, parse_size(max_shard_size))
    if len(shards) == 1:
        save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
        return
    weight_map = {}
    for number, shard in enumerate(shards, 1):
        file = f"model-{number:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, os.path.join(out_dir, file), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, file))
    index = {"metadata": {"total_size": sum(v.nbytes for v in tensors.values())}, "weight_map": weight_map}
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)


def to_hf(config: PhiConfig, params: dict[str, Any], out_dir: str, *,
          vocabulary: Optional[tuple[str, VocabularyRecord]] = None,
          max_shard_size: str | int = DEFAULT_MAX_SHARD_SIZE) -> None:
    """Writes a directory that `transformers.PhiForCausalLM.from_pretrained(out_dir)` loads exactly,
    and with `vocabulary` (its file and record) one that `AutoTokenizer` loads too."""
    params = unstack_layers(params)
    tensors = {}
    for tensor in _tensor_table(config):
        value = np.asarray(_get(params, tensor.path), dtype=np.float32)
        tensors[tensor.name] = np.ascontiguousarray(tensor.to_hf(value))
        if tensors[tensor.name].shape != tensor.hf_shape:
            raise ConversionError(f"{'/'.join(tensor.path)}: config implies HF shape {tensor.hf_shape}, "
                                  f"the parameters give {tensors[tensor.name].shape}")
    record = vocabulary[1] if vocabulary else None
    tmp_dir = _new_output_dir(out_dir)
    try:
        _write_weights(tensors, tmp_dir, max_shard_size)
        with open(os.path.join(tmp_dir, "config.json"), "w") as f:
            json.dump(config_to_hf(config, record), f, indent=2)
        if record is not None:
            with open(os.path.join(tmp_dir, "generation_config.json"), "w") as f:
                json.dump(special_ids(record), f, indent=2)
            write_hf_tokenizer(vocabulary[0], tmp_dir, eos_id=record.eos_id, pad_id=record.pad_id,
                               bos_id=record.bos_id, model_max_length=config.max_position_embeddings)
        _publish(tmp_dir, out_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise


# --------------------------------------------------------------------------------------- CLI

def _tokenizer_special_ids(hf_dir: str) -> dict[str, Optional[int]]:
    """bos/eos/pad ids that `tokenizer_config.json` names for `tokenizer.json`. config.json's ids are
    not used: they are often transformers' defaults, which need not be the tokenizer's tokens."""
    config_path = os.path.join(hf_dir, "tokenizer_config.json")
    if not os.path.exists(config_path) or not os.path.exists(os.path.join(hf_dir, "tokenizer.json")):
        return {}
    import tokenizers

    with open(config_path) as f:
        tokenizer_config = json.load(f)
    tokenizer = tokenizers.Tokenizer.from_file(os.path.join(hf_dir, "tokenizer.json"))
    ids = {}
    for role in ("bos", "eos", "pad"):
        token = tokenizer_config.get(f"{role}_token")
        token = token.get("content") if isinstance(token, dict) else token
        ids[f"{role}_id"] = tokenizer.token_to_id(token) if token else None
    return ids


def _carried_vocabulary(hf_dir: str, present: list[str]) -> Optional[tuple[list[str], VocabularyRecord]]:
    """The tokenizer files of `hf_dir` and their record."""
    from phi1_jax.checkpoint import vocabulary_to_carry

    vocabulary = next((n for n in ("tokenizer.json", "tokenizer.model") if n in present), None)
    if vocabulary is None:
        return None
    try:
        return vocabulary_to_carry(os.path.join(hf_dir, vocabulary),
                                   [os.path.join(hf_dir, n) for n in present if n != vocabulary],
                                   **_tokenizer_special_ids(hf_dir))
    except ValueError as error:
        raise ConversionError(f"{hf_dir}/{vocabulary} cannot be read as a vocabulary: {error}") from error


def _from_hf_command(hf_dir: str, ckpt_dir: str) -> None:
    from phi1_jax.checkpoint import save_model

    config, params = from_hf(hf_dir)
    present = [n for n in TOKENIZER_FILES if os.path.exists(os.path.join(hf_dir, n))]
    vocabulary = _carried_vocabulary(hf_dir, present)
    tmp_dir = _new_output_dir(ckpt_dir)
    try:
        save_model(tmp_dir, config, params, vocabulary=vocabulary)
        _publish(tmp_dir, ckpt_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    print(f"wrote {ckpt_dir}: {config.num_params():,} parameters"
          f"{' and tokenizer ' + ', '.join(present) if vocabulary else ' (no tokenizer in ' + hf_dir + ')'}")


def _to_hf_command(ckpt_dir: str, hf_dir: str, max_shard_size: int, tokenizer: Optional[str]) -> None:
    from data_pipeline.seqio_data.vocabularies import vocabulary_file
    from phi1_jax.checkpoint import check_vocabulary, load_model, read_vocabulary, vocabulary_to_carry

    config, params = load_model(ckpt_dir)
    if tokenizer:
        files, record = vocabulary_to_carry(vocabulary_file(tokenizer))
        vocabulary = files[0], record
    else:
        vocabulary = read_vocabulary(ckpt_dir)
        if vocabulary is not None:
            check_vocabulary(*vocabulary, config.vocab_size)
    to_hf(config, params, hf_dir, vocabulary=vocabulary, max_shard_size=max_shard_size)
    if vocabulary is None:
        print(f"warning: {ckpt_dir} carries no vocabulary, so {hf_dir} has no tokenizer; "
              "pass --tokenizer FILE_OR_DIR with the one it was trained with", file=sys.stderr)
    print(f"wrote {hf_dir}: load it with transformers.AutoTokenizer.from_pretrained({hf_dir!r}) and "
          f"transformers.PhiForCausalLM.from_pretrained({hf_dir!r})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m phi1_jax.convert", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    from_cmd = commands.add_parser("from-hf", help="HF Phi directory (weights, config.json, tokenizer files) -> "
                                                   "orbax checkpoint directory with its tokenizer/")
    from_cmd.add_argument("hf_dir")
    from_cmd.add_argument("ckpt_dir")
    to_cmd = commands.add_parser("to-hf", help="checkpoint (dir, step dir or workdir) -> HF directory: config.json, "
                                               "generation_config.json, safetensors weights, tokenizer files")
    to_cmd.add_argument("ckpt_dir")
    to_cmd.add_argument("hf_dir")
    to_cmd.add_argument("--max-shard-size", type=parse_size, default=DEFAULT_MAX_SHARD_SIZE,
                        help="weights past this are sharded with an index, e.g. 5GB or 500MB "
                             f"(default {DEFAULT_MAX_SHARD_SIZE}, as transformers' save_pretrained)")
    to_cmd.add_argument("--tokenizer", help="the vocabulary (SentencePiece .model, tokenizer.json or their dir) to "
                                            "export instead of the one the checkpoint carries")
    args = parser.parse_args(argv)
    try:
        if args.command == "from-hf":
            _from_hf_command(args.hf_dir, args.ckpt_dir)
        else:
            _to_hf_command(args.ckpt_dir, args.hf_dir, args.max_shard_size, args.tokenizer)
    except (ConversionError, FileExistsError, FileNotFoundError, VocabularyMismatchError) as e:
        parser.exit(2, f"error: {e}\n")


if __name__ == "__main__":
    main()
