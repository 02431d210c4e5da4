"""Requests per second of the LLM client (data_pipeline.llm_client) at concurrency 64 against the
local OpenAI-compatible test server answering after a fixed 200 ms, beside the ideal of the same
run (concurrency / latency = 320/s; target: at least 80% of it), and the client's own CPU time per
request (the server runs in a child process, so it is not counted). Every answer goes through the
client's whole path: retry wrapper, parsing and the cache write (fsynced every second).

    .venv/bin/python benchmarks/llm_client_speed.py [--requests 1600] [--concurrency 64] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "tests")]  # this checkout, and the one test server beside its tests

from data_pipeline.llm_client import LLMClient, LLMRequest  # noqa: E402
from openai_server import OpenAIServer  # noqa: E402


def _answer(body: dict) -> str:
    return "def add(a, b):\n    return a + b\n"


def _serve(latency: float, ports: multiprocessing.Queue, stop: multiprocessing.Event) -> None:
    with OpenAIServer(_answer, latency=latency) as server:
        ports.put(server.port)
        stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1600)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    ports, stop = context.Queue(), context.Event()
    server = context.Process(target=_serve, args=(args.latency, ports, stop), daemon=True)
    server.start()
    try:
        base_url = f"http://127.0.0.1:{ports.get(timeout=60)}/v1"
        with tempfile.TemporaryDirectory() as cache_dir:
            client = LLMClient(base_url=base_url, model="bench", cache_dir=cache_dir,
                               concurrency=args.concurrency, timeout=30)
            requests = [LLMRequest([{"role": "user", "content": f"write add number {i}"}], {"max_tokens": 32})
                        for i in range(args.requests)]
            cpu, wall = time.process_time(), time.perf_counter()
            results = client.run(requests, parse=str)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        stop.set()
        server.join(10)
    assert all(r.ok and not r.cached for r in results), "every request must be answered by the server"
    ideal = args.concurrency / args.latency
    rate = args.requests / wall
    print(f"{args.requests} requests, concurrency {args.concurrency}, server latency {args.latency * 1e3:.0f} ms")
    print(f"ideal    {ideal:8.1f} requests/s")
    print(f"client   {rate:8.1f} requests/s  ({rate / ideal:.0%} of ideal; target >= 80%)")
    print(f"client CPU time per request: {cpu / args.requests * 1e3:.2f} ms  (wall {wall:.2f} s); "
          f"{ideal:.0f}/s needs {cpu / args.requests * ideal:.0%} of one core")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
