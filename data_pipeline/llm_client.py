"""The one LLM client of the data pipeline (DESIGN.md "Pieces that several stages share"): annotation
of educational value and synthetic textbooks / exercises send their prompts through it to any
OpenAI-compatible `base_url` (OpenAI, vLLM, llama.cpp server, TGI), chat or completions.

- asyncio with at most `concurrency` requests in flight, optional requests-per-minute and
  tokens-per-minute limits (aiolimiter);
- retries with exponential backoff and full jitter on 429, 5xx, timeouts, dropped connections and
  malformed or truncated JSON, waiting at least what `retry-after` asks;
- a content-addressed cache under `cache_dir`: answers keyed by the hash of (model, prompt,
  sampling parameters, sample index, parse attempt), appended to a log the moment they arrive and
  fsynced every second and at the end, so a SIGKILL at any moment loses no answer and a rerun
  requests nothing that was answered;
- usage and cost accounting (prices per million prompt / completion tokens) with a budget cap:
  when the cost of the answers used by a run (cached ones included) reaches `budget_usd`, no new
  request starts, the ones in flight finish and are cached, and `run` raises `BudgetExceeded`,
  whose message says what was spent and how to continue; rerunning with a higher cap resumes from
  the cache;
- `parse(text)` raising ValueError marks an answer unparseable: the client asks again under a new
  cache key (the attempt number is part of it), up to `max_parse_attempts`, then records the
  failure with every raw answer. It never guesses a value;
- a tqdm progress bar with rate and ETA;
- a Batch-API mode (`run_batch`: JSONL upload, results joined on `custom_id`) for bulk jobs.

Stages call the synchronous `LLMClient.run(requests, parse=...)` (or `run_batch`); results come back
in request order. The test server for all of this is `tests/openai_server.py`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import hashlib
import json
import os
import random
import ssl
import sys
import time
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import certifi
import openai
from aiolimiter import AsyncLimiter

Messages = Sequence[Mapping[str, str]]
_CHARS_PER_TOKEN = 4  # rough prompt-size estimate for the tokens-per-minute limiter only
_DEFAULT_MAX_TOKENS_ESTIMATE = 256
# How often answers written to the cache are fsynced (a crash of the process loses nothing anyway).
_SYNC_INTERVAL_S = 1.0
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
    """Append-only answer logs `<dir>/answers-<time>-<pid>.log`, one per writer, one line per answer:
    `<64 hex key>\t<entry JSON>\n`. A line is written with one `os.write` the moment its answer
    arrives (a SIGKILL after that loses nothing: the kernel has it) and `sync` fsyncs the log (power
    loss); a line torn by a crash has no newline and is ignored. Opening scans the logs for keys and
    offsets only; `get` reads one entry."""

    _KEY_LENGTH = 64

    def __init__(self, directory: str) -> None:
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self._index: dict[str, tuple[str, int, int]] = {}  # key -> (log, offset, length) of its JSON
        for name in sorted(os.listdir(directory)):
            if name.startswith("answers-") and name.endswith(".log"):
                self._scan(os.path.join(directory, name))
        self._fd: Optional[int] = None
        self._path = ""
        self._offset = 0
        self._unsynced = False

    def _scan(self, path: str) -> None:
        offset, k = 0, self._KEY_LENGTH
        with open(path, "rb") as f:
            for line in f:
                if line.endswith(b"\n") and line[k:k + 1] == b"\t":
                    self._index[line[:k].decode("ascii")] = (path, offset + k + 1, len(line) - k - 2)
                offset += len(line)

    def get(self, key: str) -> Optional[dict]:
        where = self._index.get(key)
        if where is None:
            return None
        path, offset, length = where
        with open(path, "rb") as f:
            f.seek(offset)
            return json.loads(f.read(length))

    def put(self, key: str, entry: Mapping[str, Any]) -> None:
        if len(key) != self._KEY_LENGTH:
            raise ValueError(f"cache keys are {self._KEY_LENGTH} hex digits, got {key!r}")
        if self._fd is None:
            self._path = os.path.join(self.directory, f"answers-{time.time_ns()}-{os.getpid()}.log")
            self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            _fsync_directory(self.directory)
        data = json.dumps(entry, ensure_ascii=False).encode("utf-8")
        line = memoryview(key.encode("ascii") + b"\t" + data + b"\n")
        while line:  # a regular file takes it all unless the disk is full, which raises
            line = line[os.write(self._fd, line):]
        self._index[key] = (self._path, self._offset + self._KEY_LENGTH + 1, len(data))
        self._offset += self._KEY_LENGTH + len(data) + 2
        self._unsynced = True

    def sync(self) -> None:
        if self._fd is not None and self._unsynced:
            self._unsynced = False
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
            self._fd = None

    def __contains__(self, key: str) -> bool:
        return key in self._index

    def __len__(self) -> int:
        return len(self._index)


def _fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
                 batch_poll_interval: float = 30.0, progress: bool = False, description: str = "llm") -> None:
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
        self.batch_poll_interval = batch_poll_interval
        self.progress = progress
        self.description = description
        self.stats = RunStats()
        self._fresh: set[str] = set()  # keys answered by the batches of this run_batch

    def cost(self, usage: Usage) -> float:
        return (usage.prompt_tokens * self.prompt_price_per_m
                + usage.completion_tokens * self.completion_price_per_m) / 1e6

    def run(self, requests: Sequence[LLMRequest], parse: Optional[Callable[[str], Any]] = None,
            max_parse_attempts: int = 3) -> list[LLMResult]:
        """Results in request order; raises BudgetExceeded when the budget cap stopped the run."""
        return asyncio.run(self.arun(requests, parse, max_parse_attempts))

    async def arun(self, requests: Sequence[LLMRequest], parse: Optional[Callable[[str], Any]] = None,
                   max_parse_attempts: int = 3) -> list[LLMResult]:
        self.stats, self._fresh = RunStats(requests=len(requests)), set()
        return await self._finish(requests, parse, max_parse_attempts)

    async def _finish(self, requests: Sequence[LLMRequest], parse: Optional[Callable[[str], Any]],
                      max_parse_attempts: int) -> list[LLMResult]:
        if max_parse_attempts < 1:
            raise ValueError(f"max_parse_attempts must be at least 1, got {max_parse_attempts}")
        return await _Run(self, list(requests), parse, max_parse_attempts).execute()

    def run_batch(self, requests: Sequence[LLMRequest], parse: Optional[Callable[[str], Any]] = None,
                  max_parse_attempts: int = 3, *, max_rounds: int = 3) -> list[LLMResult]:
        """`run` through the Batch API, for bulk jobs at its lower price: the requests with no cached
        answer go up as JSONL files (one per route, `custom_id` = cache key), the results are joined
        back on `custom_id` into the cache, requests a batch left unanswered go into another batch
        (up to `max_rounds`), unparseable answers into the next attempt's batch; whatever is still
        unanswered is then requested directly. Batch ids are recorded in `cache_dir/batches.jsonl`,
        so a restarted run polls the batch it had submitted instead of paying for it twice. The
        budget is checked before each batch; a batch can pass it by its own size."""
        requests = list(requests)
        self.stats, self._fresh = RunStats(requests=len(requests)), set()
        api = openai.OpenAI(base_url=self.base_url, api_key=self.api_key, timeout=self.timeout,
                            max_retries=self.max_retries)
        try:
            for attempt in range(max_parse_attempts):
                wanted = [r for r in requests if self._wants_attempt(r, attempt, parse)]
                for _ in range(max_rounds):
                    missing = {}
                    for request in wanted:
                        key = cache_key(self.model, request, attempt)
                        if key not in self.cache:
                            missing[key] = request
                    if not missing or (self.budget_usd is not None and self.stats.new_cost_usd >= self.budget_usd):
                        break
                    self._batch_round(api, missing)
        finally:
            api.close()
        return asyncio.run(self._finish(requests, parse, max_parse_attempts))

    def _wants_attempt(self, request: LLMRequest, attempt: int, parse: Optional[Callable[[str], Any]]) -> bool:
        """Whether `request` needs an answer for parse attempt `attempt`: every earlier one is
        cached and unparseable."""
        if attempt == 0:
            return True
        if parse is None:
            return False
        for earlier in range(attempt):
            entry = self.cache.get(cache_key(self.model, request, earlier))
            if entry is None:
                return False
            try:
                parse(entry["text"])
                return False
            except ValueError:
                continue
        return True

    def _batch_round(self, api: openai.OpenAI, missing: Mapping[str, LLMRequest]) -> None:
        by_route: dict[str, list[str]] = {}
        for key, request in missing.items():
            path, body = request_body(self.model, request)
            by_route.setdefault(path, []).append(json.dumps(
                {"custom_id": key, "method": "POST", "url": f"/v1{path}", "body": body}, ensure_ascii=False))
        for path, lines in by_route.items():
            batch = self._submitted_batch(api, path, lines)
            while batch.status not in ("completed", "failed", "expired", "cancelled"):
                time.sleep(self.batch_poll_interval)
                batch = api.batches.retrieve(batch.id)
            if not batch.output_file_id:
                self.stats.retries[f"batch {batch.status}"] = self.stats.retries.get(f"batch {batch.status}", 0) + 1
                continue
            for line in api.files.content(batch.output_file_id).text.splitlines():
                item = json.loads(line)
                request = missing.get(item.get("custom_id"))
                response = item.get("response") or {}
                if request is None or item["custom_id"] in self.cache:
                    continue
                self.stats.api_calls += 1
                try:
                    if response.get("status_code") != 200:
                        raise _RetryableError(f"batch item {response.get('status_code')}")
                    self._store(item["custom_id"], request, *read_answer(request, response.get("body")))
                    self._fresh.add(item["custom_id"])
                except _RetryableError as e:
                    self.stats.retries[e.reason] = self.stats.retries.get(e.reason, 0) + 1

    def _submitted_batch(self, api: openai.OpenAI, path: str, lines: list[str]) -> Any:
        """The batch of these request lines: the one recorded earlier if it can still deliver, else a new one."""
        content = ("\n".join(lines) + "\n").encode("utf-8")
        digest = hashlib.sha256(path.encode() + b"\0" + content).hexdigest()
        ledger = os.path.join(self.cache.directory, "batches.jsonl")
        if os.path.exists(ledger):
            with open(ledger, encoding="utf-8") as f:
                known = [json.loads(line) for line in f if line.endswith("\n")]
            for record in reversed(known):
                if record["requests"] == digest:
                    batch = api.batches.retrieve(record["batch_id"])
                    if batch.status not in ("failed", "expired", "cancelled"):
                        return batch
                    break
        uploaded = api.files.create(file=("requests.jsonl", content), purpose="batch")
        batch = api.batches.create(input_file_id=uploaded.id, endpoint=f"/v1{path}", completion_window="24h")
        with open(ledger, "a", encoding="utf-8") as f:
            f.write(json.dumps({"requests": digest, "batch_id": batch.id}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return batch

    def _store(self, key: str, request: LLMRequest, text: str, usage: Usage, finish_reason: Optional[str]) -> dict:
        """Caches a new answer and counts it; returns its cache entry."""
        entry = {"model": self.model, "prompt": request.prompt, "params": dict(request.params),
                 "sample_index": request.sample_index, "text": text,
                 "usage": dataclasses.asdict(usage), "finish_reason": finish_reason}
        self.cache.put(key, entry)
        self.stats.new_answers += 1
        self.stats.new_usage.add(usage)
        self.stats.new_cost_usd += self.cost(usage)
        return entry

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
        self.stats = client.stats
        self.stopped = False
        self.bar = None

    async def execute(self) -> list[LLMResult]:
        client = self.client
        start = time.monotonic()
        # Paced, not bursty: one request per 60/rpm seconds, and a second's worth of tokens at most
        # at once (a limiter over a whole minute would let the first minute's quota go out at once).
        self.rpm = AsyncLimiter(1, 60 / client.requests_per_minute) if client.requests_per_minute else None
        self.tpm = AsyncLimiter(client.tokens_per_minute / 60, 1) if client.tokens_per_minute else None
        self.tls = ssl.create_default_context(cafile=certifi.where())
        if client.progress:
            from tqdm import tqdm
            self.bar = tqdm(total=len(self.requests), desc=client.description, unit="req", file=sys.stderr)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(len(self.requests)):
            queue.put_nowait(index)
        syncer = asyncio.create_task(self._sync_periodically())
        try:
            workers = [asyncio.create_task(self._worker(queue))
                       for _ in range(min(client.concurrency, len(self.requests)) or 1)]
            await asyncio.gather(*workers)
        finally:
            syncer.cancel()
            client.cache.sync()
            if self.bar is not None:
                self.bar.close()
            self.stats.wall_s = time.monotonic() - start
        if self.stopped and any(r is None for r in self.results):
            raise BudgetExceeded(client._budget_message(self.results), self.results, self.stats)
        return self.results  # type: ignore[return-value]

    async def _sync_periodically(self) -> None:
        while True:
            await asyncio.sleep(_SYNC_INTERVAL_S)
            await asyncio.to_thread(self.client.cache.sync)

    async def _worker(self, queue: asyncio.Queue[int]) -> None:
        # One connection pool per worker: the HTTP pool scans all its connections on every request,
        # which at 64 connections in one pool cost more CPU than everything else per request. They
        # share one TLS context (building one costs ~40 ms of CPU).
        # The openai package's own retries are off: this module's policy is the only one.
        http = openai.DefaultAsyncHttpxClient(verify=self.tls)
        async with openai.AsyncOpenAI(base_url=self.client.base_url, api_key=self.client.api_key,
                                      timeout=self.client.timeout, max_retries=0, http_client=http) as api:
            while not queue.empty():
                index = queue.get_nowait()
                self._record(index, await self._resolve(api, self.requests[index]))

    def _record(self, index: int, result: Optional[LLMResult]) -> None:
        if result is None:
            return
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

    async def _resolve(self, api: openai.AsyncOpenAI, request: LLMRequest) -> Optional[LLMResult]:
        """Answers (and parses) one request; None when the budget stopped it before an answer."""
        result = LLMResult(request)
        for attempt in range(self.max_parse_attempts):
            key = cache_key(self.client.model, request, attempt)
            entry = self.client.cache.get(key)
            if entry is None:
                if self._over_budget():
                    return None
                try:
                    entry = await self._ask(api, request, key)
                except _RetryableError as e:
                    result.error = f"no answer after {self.client.max_retries + 1} tries: {e.reason}"
                    result.attempts = attempt + 1
                    return result
                except _RejectedError as e:
                    result.error = str(e)
                    result.attempts = attempt + 1
                    return result
                result.cached = False
            elif key in self.client._fresh:  # answered by this run_batch, counted when it arrived
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

    async def _ask(self, api: openai.AsyncOpenAI, request: LLMRequest, key: str) -> dict:
        """One answer from the API with the retry policy, cached before it is returned."""
        client = self.client
        for retry in range(client.max_retries + 1):
            if self.rpm is not None:
                await self.rpm.acquire()
            if self.tpm is not None:
                await self.tpm.acquire(min(self._token_estimate(request), self.tpm.max_rate))
            self.stats.api_calls += 1
            try:
                text, usage, finish_reason = await self._call(api, request)
                break
            except _RetryableError as e:
                self.stats.retries[e.reason] = self.stats.retries.get(e.reason, 0) + 1
                if retry == client.max_retries:
                    raise
                ceiling = min(client.backoff_max, client.backoff_base * 2 ** retry)
                await asyncio.sleep(max(random.uniform(0, ceiling), e.retry_after or 0.0))
        return client._store(key, request, text, usage, finish_reason)

    @staticmethod
    def _token_estimate(request: LLMRequest) -> int:
        prompt = request.prompt if isinstance(request.prompt, str) else " ".join(
            str(m.get("content", "")) for m in request.prompt)
        return len(prompt) // _CHARS_PER_TOKEN + int(request.params.get("max_tokens", _DEFAULT_MAX_TOKENS_ESTIMATE))

    async def _call(self, api: openai.AsyncOpenAI, request: LLMRequest) -> tuple[str, Usage, Optional[str]]:
        """(text, usage, finish_reason) of one API call; _RetryableError for what a retry may fix.

        The body goes out as given and the answer comes back as plain JSON (`cast_to=object`, the
        openai package's documented way to call any route): its per-request parameter transform
        and pydantic models cost more CPU than the rest of the client together."""
        path, body = request_body(self.client.model, request)
        try:
            response = await api.post(path, body=body, cast_to=object)
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
        return read_answer(request, response)


def request_body(model: str, request: LLMRequest) -> tuple[str, dict]:
    """(API route, JSON body) of a request."""
    if request.is_chat:
        path, body = "/chat/completions", {"model": model, "messages": list(request.prompt)}
    else:
        path, body = "/completions", {"model": model, "prompt": request.prompt}
    body.update(request.params)
    return path, body


def read_answer(request: LLMRequest, response: Any) -> tuple[str, Usage, Optional[str]]:
    """(text, usage, finish_reason) of a chat or completions answer; _RetryableError when malformed."""
    try:
        choice = response["choices"][0]
        text = choice["message"]["content"] if request.is_chat else choice["text"]
        usage = response.get("usage") or {}
        counted = Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
    except (TypeError, KeyError, IndexError, AttributeError, ValueError) as e:
        raise _RetryableError("malformed answer") from e
    if not isinstance(text, str):
        raise _RetryableError("malformed answer")
    return text, counted, choice.get("finish_reason")
