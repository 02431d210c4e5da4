"""Parity with Hugging Face PhiForCausalLM, both conversion directions, every weight format, and
clear errors on bad input. The reference is a real (randomly initialised) transformers model."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from safetensors.numpy import load_file

from hf_reference import SHAPES, hf_logits, hf_model, save_hf_model
from phi1_jax import Phi
from phi1_jax.checkpoint import load_model, tokenizer_path
from phi1_jax.convert import ConversionError, from_hf, to_hf
from phi1_jax.sampling import generate

BF16_EPS = 2.0**-8


def _ids(vocab_size: int, shape=(2, 37), seed=0) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, vocab_size, shape)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_logits_match_hf(shape, tmp_path):
    model = hf_model(shape)
    config, params = from_hf(save_hf_model(model, str(tmp_path / "hf")))
    ids = _ids(config.vocab_size, (2, 256))  # long enough for the blocked causal attention path
    ours = np.asarray(Phi(config).apply({"params": params}, ids))
    assert ours.dtype == np.float32
    assert np.abs(ours - hf_logits(model, ids)).max() <= 1e-4


@pytest.mark.parametrize("shape", ["h4_v101", "h6_v257_rot04"])
def test_bfloat16_compute_within_bfloat16_tolerance(shape, tmp_path):
    config, params = from_hf(save_hf_model(hf_model(shape), str(tmp_path / "hf")))
    ids = _ids(config.vocab_size)
    f32 = np.asarray(Phi(config).apply({"params": params}, ids))
    bf16 = np.asarray(Phi(config.replace(dtype="bfloat16")).apply({"params": params}, ids))
    assert bf16.dtype == np.float32
    assert 0 < np.abs(bf16 - f32).max() <= 8 * BF16_EPS * np.abs(f32).max()
    assert (bf16.argmax(-1) == f32.argmax(-1)).mean() >= 0.95


def test_round_trip_reproduces_every_tensor_and_loads_without_warnings(tmp_path, caplog):
    model = hf_model("h6_v257_rot04")
    source = save_hf_model(model, str(tmp_path / "hf"))
    config, params = from_hf(source)
    to_hf(config, params, str(tmp_path / "back"))
    original = load_file(os.path.join(source, "model.safetensors"))
    written = load_file(str(tmp_path / "back" / "model.safetensors"))
    assert sorted(original) == sorted(written)
    for name in original:
        np.testing.assert_array_equal(written[name], original[name], err_msg=name)

    transformers.utils.logging.enable_propagation()  # transformers' loggers do not propagate by default
    try:
        with caplog.at_level(logging.WARNING):
            reloaded, info = transformers.PhiForCausalLM.from_pretrained(str(tmp_path / "back"),
                                                                         output_loading_info=True)
    finally:
        transformers.utils.logging.disable_propagation()
    assert all(not keys for keys in info.values()), info
    assert not [r.getMessage() for r in caplog.records
                if r.name.startswith("transformers") and r.levelno >= logging.WARNING]
    assert reloaded.config.rope_parameters["partial_rotary_factor"] == pytest.approx(0.375)
    ids = _ids(config.vocab_size)
    np.testing.assert_array_equal(hf_logits(reloaded.eval(), ids), hf_logits(model, ids))


@pytest.mark.parametrize("shape", ["h4_v101", "h2_v503_d64", "gqa_h4_kv2"])
def test_greedy_generation_matches_hf_generate(shape, tmp_path):
    model = hf_model(shape, seed=1)
    config, params = from_hf(save_hf_model(model, str(tmp_path / "hf")))
    prompts = [list(_ids(config.vocab_size, (n,), seed=n)) for n in (5, 11, 3)]
    expected = []
    for prompt in prompts:
        with torch.no_grad():
            ids = torch.tensor([prompt])
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=32, min_new_tokens=32,
                                 do_sample=False, eos_token_id=None, pad_token_id=0)
        expected.append(out[0, len(prompt):].tolist())
    assert all(len(e) == 32 for e in expected)
    assert generate(config, params, prompts, max_new_tokens=32) == expected


def _write_config(directory, **changes):
    path = os.path.join(directory, "config.json")
    with open(path) as f:
        config = json.load(f)
    config.update(changes)
    for key in [k for k, v in changes.items() if v is None]:
        del config[key]
    with open(path, "w") as f:
        json.dump(config, f)


def test_old_top_level_rope_config_form(tmp_path):
    model = hf_model("h6_v257_rot04")
    directory = save_hf_model(model, str(tmp_path / "hf"))
    _write_config(directory, rope_parameters=None, rope_theta=5000.0, partial_rotary_factor=0.375)
    config, params = from_hf(directory)
    assert (config.rope_theta, config.rotary_dim) == (5000.0, 6)
    ids = _ids(config.vocab_size)
    assert np.abs(np.asarray(Phi(config).apply({"params": params}, ids)) - hf_logits(model, ids)).max() <= 1e-4


@pytest.mark.parametrize("save_kwargs", [dict(max_shard_size="40KB"), dict(safe_serialization=False)],
                         ids=["sharded_safetensors", "pytorch_model_bin"])
def test_other_weight_files(save_kwargs, tmp_path):
    model = hf_model("h4_v101")
    directory = str(tmp_path / "hf")
    os.makedirs(directory)
    model.config.save_pretrained(directory)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    if save_kwargs.get("safe_serialization") is False:
        torch.save(state, os.path.join(directory, "pytorch_model.bin"))
    else:
        save_hf_model(model, directory, **save_kwargs)
        assert os.path.exists(os.path.join(directory, "model.safetensors.index.json"))
    config, params = from_hf(directory)
    ids = _ids(config.vocab_size)
    assert np.abs(np.asarray(Phi(config).apply({"params": params}, ids)) - hf_logits(model, ids)).max() <= 1e-4


def _legacy_directory(model, directory, model_type):
    """The phi-1 remote-code layouts, built from a modern model: names renamed, q/k/v fused."""
    c = model.config
    n = c.num_hidden_layers
    state = model.state_dict()
    if model_type == "phi-msft":
        embed, layer, head = "transformer.embd.wte", "transformer.h.{}", "lm_head"
        index = lambda i: i  # noqa: E731
    else:
        embed, layer, head = "layers.0.wte", "layers.{}", f"layers.{n + 1}"
        index = lambda i: i + 1  # noqa: E731
    legacy = {f"{embed}.weight": state["model.embed_tokens.weight"]}
    for p in ("weight", "bias"):
        legacy[f"{head}.ln.{p}"] = state[f"model.final_layernorm.{p}"]
        legacy[f"{head}.linear.{p}"] = state[f"lm_head.{p}"]
        for i in range(n):
            src, dst = f"model.layers.{i}", layer.format(index(i))
            legacy[f"{dst}.ln.{p}"] = state[f"{src}.input_layernorm.{p}"]
            legacy[f"{dst}.mixer.Wqkv.{p}"] = torch.cat(
                [state[f"{src}.self_attn.{x}_proj.{p}"] for x in "qkv"], dim=0)
            legacy[f"{dst}.mixer.out_proj.{p}"] = state[f"{src}.self_attn.dense.{p}"]
            legacy[f"{dst}.mlp.fc1.{p}"] = state[f"{src}.mlp.fc1.{p}"]
            legacy[f"{dst}.mlp.fc2.{p}"] = state[f"{src}.mlp.fc2.{p}"]
        legacy[f"{layer.format(index(0))}.mixer.rotary_emb.inv_freq"] = torch.ones(3)
    os.makedirs(directory)
    torch.save({k: v.contiguous() for k, v in legacy.items()}, os.path.join(directory, "pytorch_model.bin"))
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(dict(model_type=model_type, architectures=["PhiForCausalLM"], vocab_size=c.vocab_size,
                       n_embd=c.hidden_size, n_layer=n, n_head=c.num_attention_heads, n_inner=c.intermediate_size,
                       rotary_dim=int(c.hidden_size // c.num_attention_heads * c.rope_parameters["partial_rotary_factor"]),
                       n_positions=2048, layer_norm_epsilon=1e-5, activation_function="gelu_new"), f)
    return directory


@pytest.mark.parametrize("model_type", ["phi-msft", "mixformer-sequential"])
def test_legacy_remote_code_layouts(model_type, tmp_path):
    model = hf_model("h4_v101")
    config, params = from_hf(_legacy_directory(model, str(tmp_path / "legacy"), model_type))
    ids = _ids(config.vocab_size)
    assert np.abs(np.asarray(Phi(config).apply({"params": params}, ids)) - hf_logits(model, ids)).max() <= 1e-4


@pytest.fixture()
def hf_dir(tmp_path):
    return save_hf_model(hf_model("h4_v101"), str(tmp_path / "hf"))


def _drop_tensor(directory, name):
    from safetensors.numpy import save_file
    path = os.path.join(directory, "model.safetensors")
    tensors = load_file(path)
    del tensors[name]
    save_file(tensors, path, metadata={"format": "pt"})


def test_missing_tensor_is_named(hf_dir):
    _drop_tensor(hf_dir, "model.layers.1.mlp.fc2.bias")
    with pytest.raises(ConversionError, match=r"missing tensor model\.layers\.1\.mlp\.fc2\.bias \(expected shape \(64,\)\)"):
        from_hf(hf_dir)


def test_config_disagreeing_with_weights_names_key_and_shapes(hf_dir):
    _write_config(hf_dir, intermediate_size=300)
    with pytest.raises(ConversionError, match=r"model\.layers\.0\.mlp\.fc1\.weight: config\.json implies shape "
                                              r"\(300, 64\), the weights have \(256, 64\)"):
        from_hf(hf_dir)


def test_wrong_layer_count_is_reported(hf_dir):
    _write_config(hf_dir, num_hidden_layers=1)
    with pytest.raises(ConversionError, match=r"unexpected tensors \['model\.layers\.1\..*num_hidden_layers=1"):
        from_hf(hf_dir)


def test_unknown_architecture(hf_dir):
    _write_config(hf_dir, model_type="llama", architectures=["LlamaForCausalLM"])
    with pytest.raises(ConversionError, match=r"unknown architecture: model_type='llama'"):
        from_hf(hf_dir)


def test_unsupported_variant(hf_dir):
    _write_config(hf_dir, qk_layernorm=True)
    with pytest.raises(ConversionError, match="qk_layernorm=True"):
        from_hf(hf_dir)


def test_to_hf_refuses_to_overwrite_and_leaves_nothing_half_written(hf_dir, tmp_path):
    config, params = from_hf(hf_dir)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        to_hf(config, params, str(occupied))
    assert os.listdir(occupied) == ["keep.txt"]
    bad = dict(params, lm_head={"kernel": np.zeros((64, 7), np.float32), "bias": params["lm_head"]["bias"]})
    with pytest.raises(ConversionError, match=r"lm_head/kernel: config implies HF shape \(101, 64\)"):
        to_hf(config, bad, str(tmp_path / "fresh"))
    assert sorted(os.listdir(tmp_path)) == ["hf", "occupied"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "phi1_jax.convert", *args], capture_output=True, text=True,
                          timeout=300)


def test_cli_both_ways_with_tokenizer(hf_dir, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel()
    tokenizer.train_from_iterator(["def add(a, b):\n    return a + b\n"] * 4,
                                  trainers.BpeTrainer(vocab_size=100, show_progress=False,
                                                      special_tokens=["<|endoftext|>"]))
    tokenizer.save(os.path.join(hf_dir, "tokenizer.json"))

    ckpt, out = str(tmp_path / "ckpt"), str(tmp_path / "out")
    result = _cli("from-hf", hf_dir, ckpt)
    assert result.returncode == 0, result.stderr
    config, params = load_model(ckpt)
    assert tokenizer_path(ckpt) and os.path.exists(os.path.join(tokenizer_path(ckpt), "tokenizer.json"))
    result = _cli("to-hf", ckpt, out)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                                       "tokenizer_config.json"]
    assert transformers.AutoTokenizer.from_pretrained(out).eos_token == "<|endoftext|>"
    original = load_file(os.path.join(hf_dir, "model.safetensors"))
    written = load_file(os.path.join(out, "model.safetensors"))
    for name in original:
        np.testing.assert_array_equal(written[name], original[name], err_msg=name)


def test_cli_bad_input_writes_nothing(hf_dir, tmp_path):
    _drop_tensor(hf_dir, "lm_head.bias")
    result = _cli("from-hf", hf_dir, str(tmp_path / "ckpt"))
    assert result.returncode == 2
    assert "missing tensor lm_head.bias" in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["hf"]
    result = _cli("to-hf", str(tmp_path / "nowhere"), str(tmp_path / "out"))
    assert result.returncode == 2 and "no checkpoint at" in result.stderr


def test_a_checkpoint_sharded_over_8_devices_loads_in_a_one_device_process(tmp_path):
    """A pod's checkpoint converts and evaluates on a laptop: load_model does not need the mesh
    that saved it."""
    import jax

    from phi1_jax import sharding
    from phi1_jax.checkpoint import save_model

    config, params = from_hf(save_hf_model(hf_model("h4_v101"), str(tmp_path / "hf")))
    mesh = sharding.make_mesh({"data": 1, "fsdp": -1, "tensor": 1})
    spread = jax.tree.map(lambda a: jax.device_put(a, jax.sharding.NamedSharding(
        mesh, jax.sharding.PartitionSpec(*(["fsdp"] if a.shape[0] % 8 == 0 else [None])))), params)
    assert any(len(leaf.sharding.device_set) == 8 for leaf in jax.tree.leaves(spread))
    save_model(str(tmp_path / "ckpt"), config, spread)
    probe = ("import jax, numpy as np; from phi1_jax.checkpoint import load_model; "
             f"_, p = load_model({str(tmp_path / 'ckpt')!r}); "
             "print(jax.device_count(), sum(float(np.abs(np.asarray(x)).sum()) for x in jax.tree.leaves(p)))")
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    devices, total = out.stdout.split()
    assert devices == "1"
    assert float(total) == pytest.approx(sum(float(np.abs(np.asarray(x)).sum()) for x in jax.tree.leaves(params)),
                                         rel=1e-6)
