"""The command-line options of the one LLM client (`data_pipeline.llm_client`), for every stage
command that talks to a model (DESIGN.md: annotate; synthetic textbooks and exercises): one place
that names the endpoint, cache, concurrency, rate limits, retries, prices and budget, so the
stages' `--help` say the same thing and build the client the same way."""

from __future__ import annotations

import argparse

from data_pipeline.llm_client import LLMClient


def add_client_arguments(parser: argparse.ArgumentParser, *, default_timeout: float = 120.0) -> None:
    group = parser.add_argument_group("LLM endpoint (any OpenAI-compatible API)")
    group.add_argument("--base-url", default=None,
                       help="API root, e.g. http://127.0.0.1:8000/v1 for vLLM or llama.cpp (default: the "
                            "OpenAI API); the key comes from OPENAI_API_KEY")
    group.add_argument("--model", required=True, help="model name as the endpoint knows it")
    group.add_argument("--cache-dir", default=None,
                       help="answer cache: a rerun or a resumed run never pays twice for an answer")
    group.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    group.add_argument("--requests-per-minute", type=float, default=None)
    group.add_argument("--tokens-per-minute", type=float, default=None)
    group.add_argument("--timeout", type=float, default=default_timeout, help="seconds per API request")
    group.add_argument("--max-retries", type=int, default=8, help="on 429, 5xx, timeouts, dropped connections")
    group.add_argument("--prompt-price", type=float, default=0.0, help="USD per million prompt tokens")
    group.add_argument("--completion-price", type=float, default=0.0, help="USD per million completion tokens")
    group.add_argument("--budget-usd", type=float, default=None,
                       help="stop cleanly once the answers used cost this much (cached ones included)")
    group.add_argument("--no-progress", action="store_true", help="no progress bar")


def client_from_args(args: argparse.Namespace, *, default_cache_dir: str, description: str) -> LLMClient:
    return LLMClient(base_url=args.base_url, model=args.model, cache_dir=args.cache_dir or default_cache_dir,
                     concurrency=args.concurrency, requests_per_minute=args.requests_per_minute,
                     tokens_per_minute=args.tokens_per_minute, timeout=args.timeout,
                     max_retries=args.max_retries, prompt_price_per_m=args.prompt_price,
                     completion_price_per_m=args.completion_price, budget_usd=args.budget_usd,
                     progress=not args.no_progress, description=description)
