"""A local OpenAI-compatible HTTP server on 127.0.0.1 for the tests and benchmarks of the LLM client
and the stages that use it (annotation, synthetic generation): `POST /v1/chat/completions` and
`POST /v1/completions`, answers with `usage`, a fixed latency, scripted faults, and counters of
what it received and served.

    with OpenAIServer(answer=lambda body: "ok", faults={0: "429", 3: "drop"}) as server:
        client = LLMClient(base_url=server.base_url, ...)

`answer(body)` maps the request's JSON body to the answer text. `faults` decides, per request in
arrival order (numbered from 0), which fault to inject instead of an answer: a mapping
{number: fault}, a sequence indexed by number, or a function `(number, body) -> fault or None`.
Faults (`FAULTS`): "429" (with `retry-after`), "500", "slow" (answers after `slow_seconds`, longer
than a client's timeout), "hang" (never answers), "malformed" (200 with a body that is not JSON),
"truncated" (200 with the JSON cut in half), "drop" (the connection is closed with no answer).
The Batch API is served too (`POST /v1/files`, `POST /v1/batches`, `GET /v1/batches/ID`,
`GET /v1/files/ID/content`): `batches` holds every batch created, `outcomes["batch"]` counts the
requests answered through them. Tokens are counted as whitespace-separated words; only complete,
fault-free answers count as served, so a client's usage totals must equal `served_prompt_tokens`
/ `served_completion_tokens`.
"""

from __future__ import annotations

import asyncio
import collections
import email.policy
import json
import re
import threading
import time
from email.parser import BytesParser
from typing import Any, Callable, Mapping, Optional, Sequence, Union

FAULTS = ("429", "500", "slow", "hang", "malformed", "truncated", "drop")
FaultPlan = Union[Mapping[int, str], Sequence[Optional[str]], Callable[[int, dict], Optional[str]]]


def count_tokens(text: str) -> int:
    return len(text.split())


def prompt_text(body: Mapping[str, Any]) -> str:
    """The prompt of a chat or completions request as one string (chat: the contents joined)."""
    if "messages" in body:
        return "\n".join(str(m.get("content", "")) for m in body["messages"])
    return str(body.get("prompt", ""))


class OpenAIServer:
    """The server, running its own asyncio loop in a daemon thread; use as a context manager."""

    def __init__(self, answer: Callable[[dict], str], faults: FaultPlan = (), *, latency: float = 0.0,
                 slow_seconds: float = 30.0, retry_after: float = 0.05) -> None:
        self.answer = answer
        self.faults = faults
        self.latency = latency
        self.slow_seconds = slow_seconds
        self.retry_after = retry_after
        self.requests = 0  # received, faulted or not
        self.outcomes: collections.Counter[str] = collections.Counter()  # "ok" or the fault name
        self.served_prompt_tokens = 0
        self.served_completion_tokens = 0
        self.received_prompts: list[str] = []  # in arrival order, faulted requests included
        self.arrival_times: list[float] = []  # time.monotonic() of each request's arrival
        self.served_prompts: list[str] = []  # prompts whose complete answer was sent
        self.files: dict[str, bytes] = {}  # Batch API uploads and outputs
        self.batches: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="openai-test-server")
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "OpenAIServer":
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the test OpenAI server did not start")
        return self

    def __exit__(self, *_exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0, backlog=1024))
        self.port = server.sockets[0].getsockname()[1]
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    def _fault(self, number: int, body: dict) -> Optional[str]:
        plan = self.faults
        if callable(plan):
            fault = plan(number, body)
        elif isinstance(plan, Mapping):
            fault = plan.get(number)
        else:
            fault = plan[number] if number < len(plan) else None
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {FAULTS}")
        return fault

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: one request after another on this connection
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                headers = {k.strip().lower(): v.strip() for k, _, v in
                           (line.partition(":") for line in header_lines if line)}
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                if not await self._respond(request_line, headers, body, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _respond(self, request_line: str, headers: Mapping[str, str], raw_body: bytes,
                       writer: asyncio.StreamWriter) -> bool:
        """Answers one request; False when the connection must be closed."""
        method, path, _ = request_line.split(" ", 2)
        batch_route = self._batch_api(method, path, headers, raw_body)
        if batch_route is not None:
            status, payload = batch_route
            if isinstance(payload, bytes):
                self._send_raw(writer, status, payload)
            else:
                self._send(writer, status, payload)
            await writer.drain()
            return True
        if method != "POST" or not path.endswith(("/chat/completions", "/completions")):
            self._send(writer, 404, {"error": {"message": f"no route {method} {path}"}})
            return True
        body = json.loads(raw_body)
        prompt = prompt_text(body)
        with self._lock:
            number = self.requests
            self.requests += 1
            self.received_prompts.append(prompt)
            self.arrival_times.append(time.monotonic())
            fault = self._fault(number, body)
            self.outcomes[fault or "ok"] += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        if fault == "429":
            self._send(writer, 429, {"error": {"message": "rate limited", "type": "rate_limit"}},
                       {"retry-after": f"{self.retry_after}"})
        elif fault == "500":
            self._send(writer, 500, {"error": {"message": "internal error"}})
        elif fault == "drop":
            writer.transport.abort()
            return False
        elif fault == "hang":
            await asyncio.Event().wait()
        else:
            text = self.answer(body)
            payload = self._completion(body, prompt, text)
            if fault == "slow":
                await asyncio.sleep(self.slow_seconds)
            if fault == "malformed":
                self._send_raw(writer, 200, b"<html>upstream gateway error</html>")
            elif fault == "truncated":
                encoded = json.dumps(payload).encode()
                self._send_raw(writer, 200, encoded[: len(encoded) // 2])
            else:
                self._send(writer, 200, payload)
                if fault is None:
                    await writer.drain()
                    self._count_served(prompt, payload)
        await writer.drain()
        return True

    def _count_served(self, prompt: str, payload: dict) -> None:
        with self._lock:
            self.served_prompt_tokens += payload["usage"]["prompt_tokens"]
            self.served_completion_tokens += payload["usage"]["completion_tokens"]
            self.served_prompts.append(prompt)

    def _batch_api(self, method: str, path: str, headers: Mapping[str, str], raw_body: bytes):
        """(status, JSON payload or bytes) for the Batch API routes (file upload, batch create and
        retrieve, file content), None for other routes. A batch is answered at creation, line by
        line through `answer` (no faults), and reports "in_progress" to its first retrieve."""
        if method == "POST" and path.endswith("/files"):
            message = BytesParser(policy=email.policy.HTTP).parsebytes(
                f"content-type: {headers['content-type']}\r\n\r\n".encode() + raw_body)
            data = next(part.get_content() for part in message.iter_parts()
                        if part.get_param("name", header="content-disposition") == "file")
            file_id = f"file-{len(self.files)}"
            self.files[file_id] = data if isinstance(data, bytes) else data.encode()
            return 200, {"id": file_id, "object": "file", "bytes": len(self.files[file_id]), "created_at": 0,
                         "filename": "requests.jsonl", "purpose": "batch", "status": "processed"}
        if method == "POST" and path.endswith("/batches"):
            request = json.loads(raw_body)
            lines = []
            for line in self.files[request["input_file_id"]].decode().splitlines():
                item = json.loads(line)
                prompt = prompt_text(item["body"])
                with self._lock:
                    self.requests += 1
                    self.received_prompts.append(prompt)
                    self.outcomes["batch"] += 1
                payload = self._completion(item["body"], prompt, self.answer(item["body"]))
                self._count_served(prompt, payload)
                lines.append(json.dumps({"id": f"req-{len(lines)}", "custom_id": item["custom_id"], "error": None,
                                         "response": {"status_code": 200, "request_id": "", "body": payload}}))
            output_id = f"file-{len(self.files)}"
            self.files[output_id] = ("\n".join(lines) + "\n").encode()
            batch_id = f"batch-{len(self.batches)}"
            self.batches[batch_id] = {
                "id": batch_id, "object": "batch", "endpoint": request["endpoint"], "errors": None,
                "input_file_id": request["input_file_id"], "completion_window": request["completion_window"],
                "status": "in_progress", "output_file_id": None, "created_at": 0,
                "request_counts": {"total": len(lines), "completed": len(lines), "failed": 0}, "_output": output_id}
            return 200, self._public(self.batches[batch_id])
        match = re.search(r"/batches/([\w-]+)$", path)
        if method == "GET" and match:
            batch = self.batches[match.group(1)]
            public = self._public(batch)
            batch.update(status="completed", output_file_id=batch["_output"])
            return 200, public
        match = re.search(r"/files/([\w-]+)/content$", path)
        if method == "GET" and match:
            return 200, self.files[match.group(1)]
        return None

    @staticmethod
    def _public(batch: dict) -> dict:
        return {k: v for k, v in batch.items() if not k.startswith("_")}

    @staticmethod
    def _completion(body: dict, prompt: str, text: str) -> dict:
        usage = {"prompt_tokens": count_tokens(prompt), "completion_tokens": count_tokens(text)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        common = {"id": f"cmpl-{time.monotonic_ns()}", "created": int(time.time()),
                  "model": body.get("model", ""), "usage": usage}
        if "messages" in body:
            return {**common, "object": "chat.completion", "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]}
        return {**common, "object": "text_completion", "choices": [
            {"index": 0, "finish_reason": "stop", "text": text, "logprobs": None}]}

    def _send(self, writer: asyncio.StreamWriter, status: int, payload: dict,
              headers: Optional[Mapping[str, str]] = None) -> None:
        self._send_raw(writer, status, json.dumps(payload).encode(), headers)

    @staticmethod
    def _send_raw(writer: asyncio.StreamWriter, status: int, data: bytes,
                  headers: Optional[Mapping[str, str]] = None) -> None:
        lines = [f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}",
                 "content-type: application/json", f"content-length: {len(data)}",
                 *(f"{k}: {v}" for k, v in (headers or {}).items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data)
