"""The shared LLM client (data_pipeline.llm_client) against the local OpenAI-compatible server
(tests/openai_server.py): every fault the server injects is retried to exactly one outcome per
prompt, usage adds up to what was served, answers survive SIGKILL, parse failures are asked again
and never guessed, and the budget cap stops cleanly and resumes."""

import collections
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from data_pipeline.llm_client import AnswerCache, BudgetExceeded, LLMClient, LLMRequest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def echo(body: dict) -> str:
    prompt = body["prompt"] if "prompt" in body else body["messages"][-1]["content"]
    return f"the answer to {prompt} is {len(prompt)}"


def fast_client(server, cache_dir, **options) -> LLMClient:
    settings = dict(model="test-model", timeout=0.5, backoff_base=0.01, backoff_max=0.05, concurrency=8)
    settings.update(options)
    return LLMClient(base_url=server.base_url, cache_dir=str(cache_dir), **settings)


def test_every_fault_is_retried_to_one_outcome_per_prompt_and_usage_matches_served(openai_server, tmp_path):
    plan = random.Random(0).choices(["429", "500", "slow", "malformed", "truncated", "drop", None],
                                    weights=[1, 1, 1, 1, 1, 1, 6], k=200)
    server = openai_server(echo, plan, slow_seconds=1.5)
    requests = ([LLMRequest(f"prompt {i}", {"max_tokens": 16, "temperature": 0.7}) for i in range(30)]
                + [LLMRequest([{"role": "user", "content": f"chat {i}"}]) for i in range(10)])
    client = fast_client(server, tmp_path)
    results = client.run(requests)

    assert len(results) == len(requests)
    for request, result in zip(requests, results):
        assert result.ok, result.error
        assert result.request is request and not result.cached
        expected = request.prompt if isinstance(request.prompt, str) else request.prompt[-1]["content"]
        assert result.text == f"the answer to {expected} is {len(expected)}"
    assert set(server.outcomes) - {"ok"} == {"429", "500", "slow", "malformed", "truncated", "drop"}
    assert max(collections.Counter(server.served_prompts).values()) == 1
    assert len(server.served_prompts) == len(requests)
    assert client.stats.new_usage.prompt_tokens == server.served_prompt_tokens
    assert client.stats.new_usage.completion_tokens == server.served_completion_tokens
    assert sum(r.usage.completion_tokens for r in results) == server.served_completion_tokens
    assert sum(client.stats.retries.values()) == server.requests - len(requests)

    received = server.requests
    again = fast_client(server, tmp_path).run(requests)
    assert server.requests == received, "a rerun must answer everything from the cache"
    assert [r.text for r in again] == [r.text for r in results] and all(r.cached for r in again)


def test_unparseable_answers_are_asked_again_then_recorded_with_every_raw_answer(openai_server, tmp_path):
    asked = collections.Counter()

    def answer(body: dict) -> str:
        asked[body["prompt"]] += 1
        if body["prompt"] == "never":
            return "I cannot answer that"
        return "42" if asked[body["prompt"]] > 1 else "forty-two"

    server = openai_server(answer)
    results = fast_client(server, tmp_path).run(
        [LLMRequest("once"), LLMRequest("never")], parse=int, max_parse_attempts=3)
    assert (results[0].value, results[0].error, results[0].attempts) == (42, None, 2)
    assert results[0].raw_answers == ["forty-two", "42"]
    assert results[1].value is None and "unparseable after 3 answers" in results[1].error
    assert results[1].raw_answers == ["I cannot answer that"] * 3
    assert server.requests == 5
    fast_client(server, tmp_path).run([LLMRequest("once"), LLMRequest("never")], parse=int)
    assert server.requests == 5


def test_failures_past_the_retry_limit_are_recorded_not_raised(openai_server, tmp_path):
    server = openai_server(echo, lambda number, body: "500" if body["prompt"] == "doomed" else None)
    results = fast_client(server, tmp_path, max_retries=2).run([LLMRequest("fine"), LLMRequest("doomed")])
    assert results[0].ok and results[1].error == "no answer after 3 tries: 500"
    assert server.outcomes["500"] == 3


_RUNNER = """
import json, sys
from data_pipeline.llm_client import LLMClient, LLMRequest
base_url, cache_dir, out, n = sys.argv[1:5]
client = LLMClient(base_url=base_url, model="test-model", cache_dir=cache_dir, concurrency=4, timeout=60)
results = client.run([LLMRequest(f"prompt {i}") for i in range(int(n))])
with open(out, "w") as f:
    json.dump([r.text for r in results], f)
"""


def test_sigkill_mid_run_loses_no_answer_and_the_restart_requests_none_again(openai_server, tmp_path):
    n, answered_before_kill = 24, 10
    first = openai_server(echo, lambda number, body: "hang" if number >= answered_before_kill else None)
    out = tmp_path / "out.json"

    def command(base_url: str) -> list[str]:
        return [sys.executable, "-c", _RUNNER, base_url, str(tmp_path / "cache"), str(out), str(n)]

    process = subprocess.Popen(command(first.base_url), cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while len(first.served_prompts) < answered_before_kill and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # the answers reach the client; the other 4 requests hang in flight
        assert process.poll() is None
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        process.kill()
    assert len(first.served_prompts) == answered_before_kill and not out.exists()

    second = openai_server(echo)
    subprocess.run(command(second.base_url), cwd=REPO, check=True, timeout=120)
    assert not set(second.received_prompts) & set(first.served_prompts)
    assert sorted(second.received_prompts + first.served_prompts) == sorted(f"prompt {i}" for i in range(n))
    texts = json.loads(out.read_text())
    assert texts == [echo({"prompt": f"prompt {i}"}) for i in range(n)]


def test_budget_cap_stops_cleanly_and_a_higher_cap_completes(openai_server, tmp_path):
    server = openai_server(lambda body: "one two three four")  # 4 completion tokens per answer
    requests = [LLMRequest(f"p{i}") for i in range(20)]
    price = dict(completion_price_per_m=250_000.0, concurrency=1)  # $1 per answer

    with pytest.raises(BudgetExceeded, match=r"budget cap of \$5.0000 reached.*15 of 20 requests.*higher budget") as stop:
        fast_client(server, tmp_path, budget_usd=5.0, **price).run(requests)
    assert sum(r is not None for r in stop.value.results) == 5 == server.requests
    assert len(AnswerCache(str(tmp_path))) == 5

    with pytest.raises(BudgetExceeded):
        fast_client(server, tmp_path, budget_usd=5.0, **price).run(requests)
    assert server.requests == 5, "the same cap asks nothing new"

    client = fast_client(server, tmp_path, budget_usd=100.0, **price)
    results = client.run(requests)
    assert all(r.ok for r in results) and server.requests == 20 == len(set(server.served_prompts))
    assert client.stats.cost_usd == pytest.approx(20.0) and client.stats.new_cost_usd == pytest.approx(15.0)
