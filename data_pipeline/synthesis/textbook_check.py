"""Validation of generated textbook sections (DESIGN.md data flow: "synthetic textbooks"), before
they become record shards: length bounds, no refusal, no chatty boilerplate opener, at least one
Python code block, and every fenced Python block parses.
"""

from __future__ import annotations

import ast
import re
from typing import Optional

MIN_CHARS = 600
MAX_CHARS = 20_000
_FENCE = re.compile(r"^```[ \t]*(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
# An untagged block may be program output or a shell session, so only tagged ones must parse.
_PYTHON_TAGS = {"python", "py", "python3"}
_REFUSAL = re.compile(r"\b(I'm sorry|I am sorry|I cannot|I can't|I'm unable|I am unable|as an AI\b|"
                      r"as a language model)", re.IGNORECASE)
_OPENER = re.compile(r"^\s*(sure|certainly|of course|absolutely|okay|ok|great|here is|here's|below is|"
                     r"in this section,? (I|we) will)\b", re.IGNORECASE)


def python_blocks(text: str) -> list[str]:
    """The bodies of the fenced code blocks tagged python, in order."""
    return [m.group(2) for m in _FENCE.finditer(text) if m.group(1).lower() in _PYTHON_TAGS]


def rejection(text: str, *, min_chars: int = MIN_CHARS, max_chars: int = MAX_CHARS) -> Optional[str]:
    """Why `text` is not kept as a textbook section ("too short", "refusal", ...), or None."""
    if _REFUSAL.search(text[:400]):
        return "refusal"
    if _OPENER.match(text):
        return "boilerplate opener"
    if len(text) < min_chars:
        return "too short"
    if len(text) > max_chars:
        return "too long"
    blocks = python_blocks(text)
    if not blocks:
        return "no python code"
    for block in blocks:
        try:
            ast.parse(block)
        except SyntaxError:
            return "code block does not parse"
    return None
