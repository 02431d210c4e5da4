"""The hand-off a new user makes: train here (demo-sized, the shipped vocabulary, the embedded data),
`convert to-hf` on the workdir, then transformers' AutoTokenizer + PhiForCausalLM / AutoModelForCausalLM
in PyTorch, HumanEval on the export, `from-hf` back; and a checkpoint decoded with a vocabulary it
was not trained with is refused."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest
import torch
import transformers

from data_pipeline.seqio_data.tokenizer import train_model
from data_pipeline.seqio_data.vocabularies import load_vocabulary
from evaluation import humaneval
from phi1_jax import checkpoint_vocabulary
from phi1_jax import convert
from phi1_jax.checkpoint import load_model, read_vocabulary, save_model, vocabulary_to_carry
from phi1_jax.model_config import PhiConfig
from phi1_jax.model import init_params
from phi1_jax.sampling import generate
from phi1_jax.train import train
from train_testlib import run_config

STDLIB = os.path.dirname(os.__file__)
TEXTS = [open(os.path.join(STDLIB, name), encoding="utf-8").read()[:4000]
         for name in ("textwrap.py", "json/decoder.py", "functools.py")] + [
    "def add(a, b):\n\treturn a + b  # é, 漢字, \u2581 and 🙂\n"]
PROMPTS = ["def add(a, b):\n", "class Stack:\n    def __init__(self):\n        self.", "import os\n\n"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    config = run_config(str(tmp_path_factory.mktemp("demo") / "workdir"), steps=3)
    train(config)
    return config.workdir


@pytest.fixture(scope="module")
def exported(workdir, tmp_path_factory):
    """`python -m phi1_jax.convert to-hf WORKDIR OUT` as the Colab notebook runs it (in this process),
    with a shard size the weights pass."""
    out = str(tmp_path_factory.mktemp("export") / "hf")
    convert.main(["to-hf", workdir, out, "--max-shard-size", "600KB"])
    return out


def test_training_carries_its_vocabulary(workdir):
    file, record = read_vocabulary(workdir)
    shipped = load_vocabulary("")
    assert (os.path.basename(file), record.vocab_size, record.eos_id, record.pad_id, record.bos_id) == (
        "python_4096.model", shipped.vocab_size, 1, 0, None)
    with open(file, "rb") as carried, open(shipped.sentencepiece_model_file, "rb") as original:
        assert carried.read() == original.read()


def test_export_loads_alone_and_tokenizes_as_training_did(exported):
    files = sorted(os.listdir(exported))
    assert {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
            "model.safetensors.index.json"} <= set(files)
    assert len([f for f in files if f.startswith("model-0")]) > 1 and "model.safetensors" not in files
    with open(os.path.join(exported, "config.json")) as f:
        hf_config = json.load(f)
    assert {k: hf_config[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id")} == {
        "bos_token_id": None, "eos_token_id": 1, "pad_token_id": 0}

    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(exported)
    ours = load_vocabulary("")
    assert (len(hf_tokenizer), hf_tokenizer.eos_token_id, hf_tokenizer.pad_token_id) == (4096, 1, 0)
    for text in TEXTS:
        ids = hf_tokenizer(text)["input_ids"]
        assert ids == list(ours.encode(text))
        assert hf_tokenizer.decode(ids) == text
    model = transformers.AutoModelForCausalLM.from_pretrained(exported)
    assert type(model) is transformers.PhiForCausalLM
    assert model.generation_config.eos_token_id == 1 and model.generation_config.pad_token_id == 0


def _hf_greedy(model, ids, max_new_tokens):
    with torch.no_grad():
        prompt = torch.tensor([ids])
        out = model.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=max_new_tokens,
                             do_sample=False)
    return out[0, len(ids):].tolist()


def test_pytorch_greedy_equals_our_sampler_and_stops_at_eos(workdir, exported):
    config, params = load_model(workdir)
    vocabulary = checkpoint_vocabulary.for_checkpoint(workdir, config.vocab_size)
    hf_tokenizer = transformers.AutoTokenizer.from_pretrained(exported)
    model = transformers.PhiForCausalLM.from_pretrained(exported).eval()
    prompts = [hf_tokenizer(p)["input_ids"] for p in PROMPTS]
    ours = generate(config, params, prompts, max_new_tokens=20, eos_id=vocabulary.eos_id)
    assert [_hf_greedy(model, ids, 20) for ids in prompts] == ours

    # Make EOS the greedy choice part-way through a continuation (raise its output bias just past
    # the smallest gap between the best logit and EOS's), then both must stop there.
    for ids, new in zip(prompts, generate(config, params, prompts, max_new_tokens=20)):
        with torch.no_grad():
            logits = model(torch.tensor([ids + new])).logits[0, len(ids) - 1:-1].numpy()
        gaps = logits.max(-1) - logits[:, 1]
        stop = int(np.argmin(gaps))
        if stop > 0:
            break
    assert stop > 0, "EOS is the best first token after every prompt"
    raise_by = gaps[stop] + min(1e-3, (gaps[:stop].min() - gaps[stop]) / 2)
    with torch.no_grad():
        model.lm_head.bias[1] += float(raise_by)
    hf_tokens = _hf_greedy(model, ids, 20)
    assert len(hf_tokens) == stop + 1 and hf_tokens[-1] == 1 and 1 not in hf_tokens[:-1]
    params = jax.tree.map(np.asarray, params)
    params["lm_head"]["bias"] = params["lm_head"]["bias"].copy()
    params["lm_head"]["bias"][1] += raise_by
    assert generate(config, params, [ids], max_new_tokens=20, eos_id=vocabulary.eos_id) == [hf_tokens[:-1]]


def test_humaneval_runs_on_the_export(exported, tmp_path):
    out = tmp_path / "results.jsonl"
    summary = humaneval.run(["--hf-model", exported, "--limit", "2", "--max-new-tokens", "8", "--batch-size", "2",
                             "--out", str(out), "--workers", "2", "--no-progress"])
    assert summary["problems"] == 2 and summary["samples"] == 2 and "pass@1" in summary


def test_from_hf_reads_the_export_back(workdir, exported, tmp_path):
    back = str(tmp_path / "back")
    convert.main(["from-hf", exported, back])
    (config, params), (config_back, params_back) = load_model(workdir), load_model(back)
    assert config_back.shape_differences(config) == {}
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(params_back)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    file, record = read_vocabulary(back)
    assert (os.path.basename(file), record.eos_id, record.pad_id) == ("tokenizer.json", 1, 0)
    carried = checkpoint_vocabulary.for_checkpoint(back, config_back.vocab_size)
    for text in TEXTS:
        assert list(carried.encode(text)) == list(load_vocabulary("").encode(text))


@pytest.fixture(scope="module")
def small_vocabulary(tmp_path_factory):
    """Another SentencePiece model (600 pieces, trained here on real source): not the shipped one."""
    path = tmp_path_factory.mktemp("spm") / "other_600.model"
    path.write_bytes(train_model(TEXTS[:3] * 3, vocab_size=600))
    return str(path)


def _humaneval_cli(capsys, *args) -> tuple[int, str]:
    """`python -m evaluation.humaneval ARGS` (in this process): exit status and stderr."""
    with pytest.raises(SystemExit) as exited:
        humaneval.main(["--limit", "1", "--max-new-tokens", "4", "--workers", "1", "--no-progress", *args])
    return exited.value.code, capsys.readouterr().err


def test_checkpoint_with_a_swapped_vocabulary_is_refused(workdir, small_vocabulary, tmp_path, capsys):
    config, params = load_model(workdir)
    checkpoint = str(tmp_path / "ckpt")
    save_model(checkpoint, config, params, vocabulary=vocabulary_to_carry(load_vocabulary("").sentencepiece_model_file))
    carried, _ = read_vocabulary(checkpoint)
    with open(small_vocabulary, "rb") as other, open(carried, "wb") as swapped:
        swapped.write(other.read())
    status, stderr = _humaneval_cli(capsys, "--checkpoint", checkpoint, "--out", str(tmp_path / "r.jsonl"))
    assert status == 2
    assert "is not the vocabulary the model was trained with" in stderr and "--tokenizer" in stderr, stderr
    assert not os.path.exists(tmp_path / "r.jsonl")


def test_tokenizer_override_larger_than_the_model_and_a_checkpoint_without_one_are_refused(
        small_vocabulary, tmp_path, capsys):
    config = PhiConfig(vocab_size=600, hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2)
    checkpoint = str(tmp_path / "small")
    save_model(checkpoint, config, init_params(config, jax.random.key(0)),
               vocabulary=vocabulary_to_carry(small_vocabulary))
    status, stderr = _humaneval_cli(capsys, "--checkpoint", checkpoint, "--tokenizer",
                                    load_vocabulary("").sentencepiece_model_file, "--out", str(tmp_path / "r.jsonl"))
    assert status == 2 and "has 4096 tokens but the model has only 600" in stderr, stderr

    bare = str(tmp_path / "bare")
    save_model(bare, config, init_params(config, jax.random.key(0)))
    status, stderr = _humaneval_cli(capsys, "--checkpoint", bare, "--out", str(tmp_path / "r.jsonl"))
    assert status == 2 and "carries no vocabulary" in stderr, stderr
