"""The one LLM client of the data pipeline (DESIGN.md "Pieces that several stages share"): annotation
of educational value and synthetic textbooks / exercises send their prompts through it to any
OpenAI-compatible `base_url` (OpenAI, vLLM, llama.cpp server, TGI), chat or completions.

- asyncio with at most `concurrency` requests in flight, optional requests-per-minute and
  tokens-per-minute limits (aiolimiter);
- retries with exponential backoff and full jitter on 429, 5xx, timeouts, dropped connections and
  malformed or truncated JSON, waiting at least what `retry-after` asks;
- a content-addressed cache: one file per answer under `cache_dir`, named by the hash of (model,
  prompt, sampling parameters, sample index, parse attempt), written atomically (temp file, fsync,
  rename) the moment the answer arrives, so a SIGKILL at any moment loses no answer and a rerun
  requests nothing that was answered;
- usage and cost accounting (prices per million prompt / completion tokens) with a budget cap:
  when the cost of the answers used by a run (cached ones included) reaches `budget_usd`, no new
  request starts, the ones in flight finish and are cached, and `run` raises `BudgetExceeded`,
  whose message says what was spent and how to continue; rerunning with a higher cap resumes from
  the cache;
- `parse(text)` raising ValueError marks an answer unparseable: the client asks again under a new
  cache key (the attempt number is part of it), up to `max_parse_attempts`, then records the
  failure with every raw answer. It never guesses a value;
- a tqdm progress bar with rate and ETA.

Stages call the synchronous `LLMClient.run(requests, parse=...)`; results come back in request order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import openai
from aiolimiter import AsyncLimiter

Messages = Sequence[Mapping[str, str]]
_CHARS_PER_TOKEN = 4  # rough prompt-size estimate for the tokens-per-minute limiter only
_DEFAULT_MAX_TOKENS_ESTIMATE = 256
# Wrong key, no access or no such model/route: every request would fail, so the run stops at once.
_CONFIGURATION_ERRORS = (401, 403, 404)


@dataclasses.dataclass(frozen=True)
class LLMRequest:
    """One prompt: chat messages (a list of `{"role", "content"}`) or a completion string, its
    sampling parameters (passed to the API as they are: temperature, max_tokens, top_p, seed, stop,
    ...) and which sample of that prompt this is (distinct cache entries for n samples)."""

    prompt: Union[str, Messages]
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    sample_index: int = 0

    @property
    def is_chat(self) -> bool:
        return not isinstance(self.prompt, str)


@dataclasses.dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: "Usage") -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens


@dataclasses.dataclass
class LLMResult:
    """The outcome of one request. `error` is None when an answer was obtained (and parsed, when a
    parser was given); otherwise it says why not, and `raw_answers` holds every answer received."""

    request: LLMRequest
    text: Optional[str] = None
    value: Any = None
    error: Optional[str] = None
    raw_answers: list[str] = dataclasses.field(default_factory=list)
    usage: Usage = dataclasses.field(default_factory=Usage)
    cost_usd: float = 0.0
    cached: bool = True  # every answer it used came from the cache
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclasses.dataclass
class RunStats:
    """Counters of one `run`; `retries` maps a reason ("429", "500", "timeout", ...) to a count."""

    requests: int = 0
    answered: int = 0
    failed: int = 0
    unparseable: int = 0
    api_calls: int = 0
    cached_answers: int = 0
    new_answers: int = 0
    new_usage: Usage = dataclasses.field(default_factory=Usage)
    cached_usage: Usage = dataclasses.field(default_factory=Usage)
    new_cost_usd: float = 0.0
    cached_cost_usd: float = 0.0
    retries: dict[str, int] = dataclasses.field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def cost_usd(self) -> float:
        return self.new_cost_usd + self.cached_cost_usd

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "cost_usd": self.cost_usd}


class BudgetExceeded(RuntimeError):
    """The budget cap stopped a run. `results` has None for every request not answered; the answers
    that arrived are cached, so rerunning with a higher cap continues where this run stopped."""

    def __init__(self, message: str, results: list[Optional[LLMResult]], stats: RunStats) -> None:
        super().__init__(message)
        self.results = results
        self.stats = stats


class _RejectedError(Exception):
    """The API refused this one request (e.g. 400, prompt too long); asking again will not help."""


class _RetryableError(Exception):
    def __init__(self, reason: str, retry_after: Optional[float] = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def cache_key(model: str, request: LLMRequest, attempt: int = 0) -> str:
    """The content address of one answer: sha256 of the canonical JSON of what determines it."""
    material = {"model": model, "prompt": request.prompt, "params": dict(request.params),
                "sample_index": request.sample_index, "attempt": attempt}
    canonical = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class AnswerCache:
    """One JSON file per answer, `<dir>/<key[:2]>/<key>.json`, each written atomically and fsynced."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        os.makedirs(directory, exist_ok=True)

    def _path(self, key: str) -> str:
        return os.path.join(self.directory, key[:2], f"{key}.json")

    def get(self, key: str) -> Optional[dict]:
        try:
            with open(self._path(key), encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return None

    def put(self, key: str, entry: Mapping[str, Any]) -> None:
        path = self._path(key)
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(entry, f, ensure_ascii=False)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def __len__(self) -> int:
        return sum(1 for _, _, files in os.walk(self.directory) for name in files
                   if name.endswith(".json") and not name.startswith(".tmp-"))


def _retry_after_seconds(headers: Mapping[str, str]) -> Optional[float]:
    """`retry-after-ms`, or `retry-after` as seconds or an HTTP date; None when absent or unreadable."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if value else None
        return None if when is None else max(0.0, when.timestamp() - time.time())


class LLMClient:
    """The client; see the module docstring. Prices are US dollars per million tokens."""

    def __init__(self, *, model: str, cache_dir: str, base_url: Optional[str] = None,
                 api_key: Optional[str] = None, concurrency: int = 16,
                 requests_per_minute: Optional[float] = None, tokens_per_minute: Optional[float] = None,
                 timeout: float = 60.0, max_retries: int = 8, backoff_base: float = 0.5,
                 backoff_max: float = 30.0, prompt_price_per_m: float = 0.0,
                 completion_price_per_m: float = 0.0, budget_usd: Optional[float] = None,
                 progress: bool = False, description: str = "llm") -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        self.model = model
        self.base_url = base_url
        # Local servers need no key, but the openai package insists on one.
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or "no-key"
        self.cache = AnswerCache(cache_dir)
        self.concurrency = concurrency
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.prompt_price_per_m = prompt_price_per_m
        self.completion_price_per_m = completion_price_per_m
        self.budget_usd = budget_usd
        self.progress = progress
        self.description = description
        self.stats = RunStats()

    def cost(self, usage: Usage) -> float:
        return (usage.prompt_tokens * self.prompt_price_per_m
                + usage.completion_tokens * self.completion_price_per_m) / 1e6

    def run(self, requests: Sequence[LLMRequest], parse: Optional[Callable[[str], Any]] = None,
            max_parse_attempts: int = 3) -> list[LLMResult]:
        """Results in request order; raises BudgetExceeded when the budget cap stopped the run."""
        return asyncio.run(self.arun(requests, parse, max_parse_attempts))

    async def arun(self, requests: Sequence[LLMRequest], parse: Optional[Callable[[str], Any]] = None,
                   max_parse_attempts: int = 3) -> list[LLMResult]:
        if max_parse_attempts < 1:
            raise ValueError(f"max_parse_attempts must be at least 1, got {max_parse_attempts}")
        run = _Run(self, list(requests), parse, max_parse_attempts)
        return await run.execute()

    def _budget_message(self, results: Sequence[Optional[LLMResult]]) -> str:
        missing = sum(r is None for r in results)
        return (f"budget cap of ${self.budget_usd:.4f} reached: answers used so far cost "
                f"${self.stats.cost_usd:.4f} (${self.stats.new_cost_usd:.4f} new in this run); "
                f"{missing} of {len(results)} requests have no answer yet. Every answer is cached in "
                f"{self.cache.directory}; rerun with a higher budget to continue from there.")


class _Run:
    """The state of one `LLMClient.run`: the work queue, limiters, progress bar and results."""

    def __init__(self, client: LLMClient, requests: list[LLMRequest], parse: Optional[Callable[[str], Any]],
                 max_parse_attempts: int) -> None:
        self.client = client
        self.requests = requests
        self.parse = parse
        self.max_parse_attempts = max_parse_attempts
        self.results: list[Optional[LLMResult]] = [None] * len(requests)
        self.stats = client.stats = RunStats(requests=len(requests))
        self.stopped = False
        self.bar = None

    async def execute(self) -> list[LLMResult]:
        client = self.client
        start = time.monotonic()
        self.rpm = AsyncLimiter(client.requests_per_minute, 60) if client.requests_per_minute else None
        self.tpm = AsyncLimiter(client.tokens_per_minute, 60) if client.tokens_per_minute else None
        # The openai package's own retries are off: this module's policy is the only one.
        self.api = openai.AsyncOpenAI(base_url=client.base_url, api_key=client.api_key,
                                      timeout=client.timeout, max_retries=0)
        if client.progress:
            from tqdm import tqdm
            self.bar = tqdm(total=len(self.requests), desc=client.description, unit="req", file=sys.stderr)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(len(self.requests)):
            queue.put_nowait(index)
        try:
            workers = [asyncio.create_task(self._worker(queue))
                       for _ in range(min(client.concurrency, len(self.requests)) or 1)]
            await asyncio.gather(*workers)
        finally:
            await self.api.close()
            if self.bar is not None:
                self.bar.close()
            self.stats.wall_s = time.monotonic() - start
        if self.stopped and any(r is None for r in self.results):
            raise BudgetExceeded(client._budget_message(self.results), self.results, self.stats)
        return self.results  # type: ignore[return-value]

    async def _worker(self, queue: asyncio.Queue[int]) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            result = await self._resolve(self.requests[index])
            if result is None:
                continue
            self.results[index] = result
            self.stats.answered += result.ok
            self.stats.failed += not result.ok
            if self.bar is not None:
                self.bar.update()
                self.bar.set_postfix(cost=f"${self.stats.cost_usd:.4f}", refresh=False)

    def _over_budget(self) -> bool:
        budget = self.client.budget_usd
        if budget is not None and self.stats.cost_usd >= budget:
            self.stopped = True
        return self.stopped

    async def _resolve(self, request: LLMRequest) -> Optional[LLMResult]:
        """Answers (and parses) one request; None when the budget stopped it before an answer."""
        result = LLMResult(request)
        for attempt in range(self.max_parse_attempts):
            key = cache_key(self.client.model, request, attempt)
            entry = self.client.cache.get(key)
            if entry is None:
                if self._over_budget():
                    return None
                try:
                    entry = await self._ask(request, key)
                except _RetryableError as e:
                    result.error = f"no answer after {self.client.max_retries + 1} tries: {e.reason}"
                    result.attempts = attempt + 1
                    return result
                except _RejectedError as e:
                    result.error = str(e)
                    result.attempts = attempt + 1
                    return result
                result.cached = False
            else:
                usage = Usage(**entry["usage"])
                self.stats.cached_answers += 1
                self.stats.cached_usage.add(usage)
                self.stats.cached_cost_usd += self.client.cost(usage)
            usage = Usage(**entry["usage"])
            result.usage.add(usage)
            result.cost_usd += self.client.cost(usage)
            result.text = entry["text"]
            result.raw_answers.append(entry["text"])
            result.attempts = attempt + 1
            if self.parse is None:
                return result
            try:
                result.value = self.parse(entry["text"])
                result.error = None
                return result
            except ValueError as e:
                result.error = f"unparseable after {attempt + 1} answers: {e}"
        self.stats.unparseable += 1
        return result

    async def _ask(self, request: LLMRequest, key: str) -> dict:
        """One answer from the API with the retry policy, cached before it is returned."""
        client = self.client
        for retry in range(client.max_retries + 1):
            if self.rpm is not None:
                await self.rpm.acquire()
            if self.tpm is not None:
                await self.tpm.acquire(min(self._token_estimate(request), client.tokens_per_minute))
            self.stats.api_calls += 1
            try:
                text, usage, finish_reason = await self._call(request)
                break
            except _RetryableError as e:
                self.stats.retries[e.reason] = self.stats.retries.get(e.reason, 0) + 1
                if retry == client.max_retries:
                    raise
                ceiling = min(client.backoff_max, client.backoff_base * 2 ** retry)
                await asyncio.sleep(max(random.uniform(0, ceiling), e.retry_after or 0.0))
        entry = {"model": client.model, "prompt": request.prompt, "params": dict(request.params),
                 "sample_index": request.sample_index, "text": text,
                 "usage": dataclasses.asdict(usage), "finish_reason": finish_reason}
        await asyncio.to_thread(client.cache.put, key, entry)
        self.stats.new_answers += 1
        self.stats.new_usage.add(usage)
        self.stats.new_cost_usd += client.cost(usage)
        return entry

    @staticmethod
    def _token_estimate(request: LLMRequest) -> int:
        prompt = request.prompt if isinstance(request.prompt, str) else " ".join(
            str(m.get("content", "")) for m in request.prompt)
        return len(prompt) // _CHARS_PER_TOKEN + int(request.params.get("max_tokens", _DEFAULT_MAX_TOKENS_ESTIMATE))

    async def _call(self, request: LLMRequest) -> tuple[str, Usage, Optional[str]]:
        """(text, usage, finish_reason) of one API call; _RetryableError for what a retry may fix."""
        model = self.client.model
        try:
            if request.is_chat:
                response = await self.api.chat.completions.create(
                    model=model, messages=list(request.prompt), **request.params)
            else:
                response = await self.api.completions.create(model=model, prompt=request.prompt, **request.params)
        except openai.APIStatusError as e:
            if e.status_code == 429 or e.status_code >= 500:
                raise _RetryableError(str(e.status_code), _retry_after_seconds(e.response.headers)) from e
            if e.status_code in _CONFIGURATION_ERRORS:
                raise
            raise _RejectedError(f"the API rejected the request ({e.status_code}): {e.message}") from e
        except openai.APITimeoutError as e:
            raise _RetryableError("timeout") from e
        except openai.APIConnectionError as e:
            raise _RetryableError("connection") from e
        except (ValueError, openai.APIResponseValidationError) as e:  # JSONDecodeError is a ValueError
            raise _RetryableError("malformed answer") from e
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise _RetryableError("malformed answer")
        choice = choices[0]
        text = choice.message.content if request.is_chat else choice.text
        if not isinstance(text, str):
            raise _RetryableError("malformed answer")
        usage = getattr(response, "usage", None)
        counted = Usage(getattr(usage, "prompt_tokens", 0) or 0, getattr(usage, "completion_tokens", 0) or 0)
        return text, counted, getattr(choice, "finish_reason", None)
