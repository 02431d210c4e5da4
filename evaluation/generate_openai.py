"""Samples from an OpenAI-compatible completions endpoint (DESIGN.md data flow: "sample ... ->
sandbox"): vLLM, llama.cpp, TGI or OpenAI itself, through the `openai` client and any `base_url`.

The endpoint is asked for `n` completions per prompt with the first four stop sequences (the API's
maximum); every completion is cut again locally at all of them.
"""

from __future__ import annotations

import concurrent.futures
import os
import sys
from typing import Mapping, Optional

import openai

from evaluation.generation import Request, Settings, to_samples
from evaluation.problems import Problem

_API_STOP_LIMIT = 4


def generate(base_url: str, model: str, problems: Mapping[str, Problem], settings: Settings, *,
             api_key: Optional[str] = None, concurrency: int = 8, progress: bool = False) -> list[dict]:
    """Sample records for `problems` from `model` served at `base_url`."""
    client = openai.OpenAI(base_url=base_url, api_key=api_key or os.environ.get("OPENAI_API_KEY", "unused"),
                           max_retries=3)

    def complete(problem: Problem) -> list[str]:
        response = client.completions.create(
            model=model, prompt=problem.prompt, n=settings.distinct, temperature=settings.temperature,
            top_p=settings.top_p, max_tokens=settings.max_new_tokens, seed=settings.seed,
            stop=list(settings.stops[:_API_STOP_LIMIT]))
        choices = sorted(response.choices, key=lambda choice: choice.index)
        if len(choices) != settings.distinct:
            raise RuntimeError(f"{base_url} returned {len(choices)} completions for {problem.task_id}, "
                               f"asked for {settings.distinct}")
        return [choice.text for choice in choices]

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        answers = pool.map(complete, problems.values())
        if progress:
            from tqdm import tqdm
            answers = tqdm(answers, total=len(problems), desc="sampling", unit="problem", file=sys.stderr)
        texts_per_problem = list(answers)
    reqs = [Request(p.task_id, p.prompt) for p, texts in zip(problems.values(), texts_per_problem) for _ in texts]
    return to_samples(reqs, [text for texts in texts_per_problem for text in texts], settings)
