"""Prompts for synthetic textbooks and exercises (DESIGN.md data flow: "synthetic textbooks /
exercises"), each a pure function of (seed, index) and the prompt data beside this module.

Diversity is built into the prompt, as the phi-1 paper found it must be, not hoped for from the
sampling temperature: a textbook prompt crosses a leaf of the topic tree with an audience, a style
and a domain its examples come from; an exercise prompt fixes the function's name (a verb and a
noun of its topic), the topic, a difficulty and a domain, and shows two of the embedded exercises
as few-shot examples. `Prompt.choices` records what was drawn; it travels with every output
together with the exact messages and parameters.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import random
from typing import Any, Sequence

_HERE = os.path.dirname(os.path.abspath(__file__))
TEXTBOOK_TOPICS = os.path.join(_HERE, "textbook_topics.json")
EXERCISE_TOPICS = os.path.join(_HERE, "exercise_topics.json")
_FEW_SHOT = 2

TEXTBOOK_SYSTEM = ("You write sections of a textbook that teaches Python programming and algorithms. "
                   "You write clear prose interleaved with short, correct, self-contained Python code.")
EXERCISE_SYSTEM = ("You write Python programming exercises: a function with a precise docstring, a correct "
                   "implementation, and assert statements that test it.")


@dataclasses.dataclass(frozen=True)
class Prompt:
    """Chat messages, sampling parameters, and what was drawn to build them."""

    messages: tuple[dict, ...]
    params: dict
    choices: dict


@functools.lru_cache(maxsize=None)
def _load(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@functools.lru_cache(maxsize=None)
def textbook_leaves() -> tuple[tuple[str, str, str], ...]:
    """Every (area, chapter, subtopic) of the topic tree, in file order."""
    tree = _load(TEXTBOOK_TOPICS)["topics"]
    return tuple((area, chapter, leaf) for area, chapters in tree.items()
                 for chapter, leaves in chapters.items() for leaf in leaves)


def _rng(kind: str, seed: int, index: int) -> random.Random:
    # A string seed is hashed with SHA-512 by `random`: stable across processes and Python versions.
    return random.Random(f"phi1-synth:{kind}:{seed}:{index}")


def textbook_prompt(seed: int, index: int, *, temperature: float = 0.8, max_tokens: int = 2048) -> Prompt:
    data = _load(TEXTBOOK_TOPICS)
    rng = _rng("textbook", seed, index)
    area, chapter, subtopic = rng.choice(textbook_leaves())
    audience = rng.choice(data["audiences"])
    style = rng.choice(data["styles"])
    domain = rng.choice(data["domains"])
    user = (f"Write one section of the chapter \"{chapter}\" (part \"{area}\") about {subtopic}.\n"
            f"Audience: {audience['name']}. {audience['instruction']}\n"
            f"Style: {style['name']}. {style['instruction']}\n"
            f"Take the examples from {domain}.\n"
            "Format: start with a line '## <section title>', then 300 to 900 words of Markdown prose "
            "with Python code in ```python fenced blocks. Every code block must be valid Python 3 "
            "that runs on its own. Do not greet the reader or say what you are about to do; begin "
            "with the title.")
    return Prompt(
        messages=({"role": "system", "content": TEXTBOOK_SYSTEM}, {"role": "user", "content": user}),
        params={"temperature": temperature, "max_tokens": max_tokens, "seed": rng.randrange(2**31)},
        choices={"area": area, "chapter": chapter, "subtopic": subtopic, "audience": audience["name"],
                 "style": style["name"], "domain": domain})


def _shown(exercise: dict) -> str:
    return exercise["prompt"] + exercise["solution"] + "\n" + "\n".join(exercise["tests"]) + "\n"


def exercise_prompt(seed: int, index: int, few_shot: Sequence[dict], *, temperature: float = 0.8,
                    max_tokens: int = 1024) -> Prompt:
    """`few_shot`: exercises as `embedded_data.load_exercises()` returns them."""
    data = _load(EXERCISE_TOPICS)
    rng = _rng("exercises", seed, index)
    topic = rng.choice(sorted(data["topics"]))
    parts = data["topics"][topic]
    name = f"{rng.choice(parts['verbs'])}_{rng.choice(parts['nouns'])}"
    difficulty = rng.choice(data["difficulties"])
    domain = rng.choice(data["domains"])
    examples = rng.sample(list(few_shot), _FEW_SHOT)
    shown = "\n\n".join(f"Example {i + 1}:\n```python\n{_shown(e)}```" for i, e in enumerate(examples))
    user = (f"{shown}\n\nWrite a new exercise in the same format: one function named `{name}` on the "
            f"topic \"{topic}\", its data taken from {domain}. Difficulty: {difficulty['name']}. "
            f"{difficulty['instruction']}\n"
            "Reply with one ```python block holding, in this order: any imports, the function with a "
            "docstring that fully specifies it, its implementation, then at least three top-level "
            f"assert statements that call `{name}` and check its results. Nothing else.")
    return Prompt(
        messages=({"role": "system", "content": EXERCISE_SYSTEM}, {"role": "user", "content": user}),
        params={"temperature": temperature, "max_tokens": max_tokens, "seed": rng.randrange(2**31)},
        choices={"topic": topic, "function_name": name, "difficulty": difficulty["name"], "domain": domain,
                 "few_shot": [e["id"] for e in examples]})


def build_prompts(kind: str, seed: int, num: int, start: int = 0, **sampling: Any) -> list[Prompt]:
    """Prompts `start .. start + num - 1` of `kind` ("textbook" or "exercises")."""
    if kind == "textbook":
        return [textbook_prompt(seed, i, **sampling) for i in range(start, start + num)]
    if kind == "exercises":
        from data_pipeline import embedded_data  # imports tensorflow (records), which textbooks need not wait for

        few_shot = embedded_data.load_exercises()
        return [exercise_prompt(seed, i, few_shot, **sampling) for i in range(start, start + num)]
    raise ValueError(f"unknown kind {kind!r}: expected 'textbook' or 'exercises'")
