"""The shared LLM client (data_pipeline.llm_client) against the local OpenAI-compatible server
(tests/openai_server.py): every fault the server injects is retried to exactly one outcome per
prompt, usage adds up to what was served, parse failures are asked again and never guessed, the
budget cap stops cleanly and resumes, a torn cache line is ignored, and the Batch API mode joins
results on custom_id. (SIGKILL of a generator process: tests/test_synth.py.)"""

import collections
import random

import pytest

from data_pipeline.llm_client import AnswerCache, BudgetExceeded, LLMClient, LLMRequest, cache_key

def echo(body: dict) -> str:
    prompt = body["prompt"] if "prompt" in body else body["messages"][-1]["content"]
    return f"the answer to {prompt} is {len(prompt)}"


def fast_client(server, cache_dir, **options) -> LLMClient:
    settings = dict(model="test-model", timeout=0.5, backoff_base=0.01, backoff_max=0.05, concurrency=8,
                    batch_poll_interval=0.01)
    settings.update(options)
    return LLMClient(base_url=server.base_url, cache_dir=str(cache_dir), **settings)


def test_every_fault_is_retried_to_one_outcome_per_prompt_and_usage_matches_served(openai_server, tmp_path):
    plan = random.Random(0).choices(["429", "500", "slow", "malformed", "truncated", "drop", None],
                                    weights=[1, 1, 1, 1, 1, 1, 6], k=200)
    server = openai_server(echo, plan, slow_seconds=1.5, retry_after=0.3)  # backoff alone waits <= 0.05 s
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
    for number, fault in enumerate(plan[:server.requests]):
        if fault == "429":  # its retry waited for retry-after
            prompt, at = server.received_prompts[number], server.arrival_times[number]
            retry = server.received_prompts.index(prompt, number + 1)
            assert server.arrival_times[retry] - at >= 0.3

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


@pytest.mark.parametrize("limit", [{"requests_per_minute": 1200.0}, {"tokens_per_minute": 12_000.0}])
def test_rate_limits_pace_the_requests(openai_server, tmp_path, limit):
    server = openai_server(echo)
    # 1200 requests/min: one per 50 ms. 12000 tokens/min = 200 per second, each request is
    # estimated at 10 tokens: about 20 per second once the first second's 200 tokens are spent.
    requests = [LLMRequest(f"p{i}", {"max_tokens": 10}) for i in range(10 if "requests_per_minute" in limit else 30)]
    results = fast_client(server, tmp_path, **limit).run(requests)
    assert all(r.ok for r in results)
    span = server.arrival_times[-1] - server.arrival_times[0]
    assert span >= 0.35, span  # paced: about 0.45 s; unlimited, these arrive within a few ms


def test_failures_past_the_retry_limit_are_recorded_not_raised(openai_server, tmp_path):
    server = openai_server(echo, lambda number, body: "500" if body["prompt"] == "doomed" else None)
    results = fast_client(server, tmp_path, max_retries=2).run([LLMRequest("fine"), LLMRequest("doomed")])
    assert results[0].ok and results[1].error == "no answer after 3 tries: 500"
    assert server.outcomes["500"] == 3


def test_budget_cap_stops_cleanly_and_a_higher_cap_completes(openai_server, tmp_path):
    server = openai_server(lambda body: "one two three four")  # 4 completion tokens per answer
    requests = [LLMRequest(f"p{i}") for i in range(20)]
    price = dict(completion_price_per_m=250_000.0, concurrency=1)  # $1 per answer

    message = r"budget cap of \$5.0000 reached.*15 of 20 requests.*higher budget"
    with pytest.raises(BudgetExceeded, match=message) as stop:
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


def test_a_line_torn_by_a_crash_is_ignored_and_the_answers_before_it_are_kept(tmp_path):
    cache = AnswerCache(str(tmp_path))
    keys = [cache_key("m", LLMRequest(f"p{i}")) for i in range(3)]
    for key in keys[:2]:
        cache.put(key, {"text": key[:8], "usage": {"prompt_tokens": 1, "completion_tokens": 1}})
    cache.close()
    (log,) = tmp_path.glob("answers-*.log")
    with open(log, "ab") as f:
        f.write(keys[2].encode() + b'\t{"text": "cut off by SIGK')
    reopened = AnswerCache(str(tmp_path))
    assert len(reopened) == 2 and keys[2] not in reopened
    assert [reopened.get(k)["text"] for k in keys[:2]] == [k[:8] for k in keys[:2]]
    reopened.put(keys[2], {"text": "again", "usage": {"prompt_tokens": 1, "completion_tokens": 1}})
    assert AnswerCache(str(tmp_path)).get(keys[2])["text"] == "again"


def test_batch_mode_joins_results_on_custom_id_and_asks_unparseable_ones_again(openai_server, tmp_path):
    asked = collections.Counter()

    def answer(body: dict) -> str:
        prompt = body["prompt"] if "prompt" in body else body["messages"][-1]["content"]
        asked[prompt] += 1
        return "not a number" if prompt == "q3" and asked[prompt] == 1 else str(len(prompt) * 10)

    server = openai_server(answer)
    requests = ([LLMRequest([{"role": "user", "content": f"q{i}"}]) for i in range(6)]
                + [LLMRequest(f"completion {i}") for i in range(2)])
    client = fast_client(server, tmp_path)
    results = client.run_batch(requests, parse=int)

    assert [r.value for r in results] == [20] * 6 + [120] * 2
    assert results[3].raw_answers == ["not a number", "20"] and not any(r.cached for r in results)
    assert [b["endpoint"] for b in server.batches.values()] == ["/v1/chat/completions", "/v1/completions",
                                                                 "/v1/chat/completions"]
    assert server.outcomes == {"batch": 9} and client.stats.api_calls == 9
    assert client.stats.new_usage.completion_tokens == server.served_completion_tokens
    again = fast_client(server, tmp_path).run_batch(requests, parse=int)
    assert [r.value for r in again] == [r.value for r in results] and len(server.batches) == 3
