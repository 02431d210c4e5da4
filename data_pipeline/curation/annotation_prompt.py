"""The educational-value question put to an LLM (DESIGN.md: "annotate (LLM, sample)"): the
versioned rubric from the repository as the system message, the file's opening as the user
message, and the strict reader of the answer. A score is never guessed: an answer that is not
exactly the JSON object the rubric asks for is unparseable, and the LLM client asks again.
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

from data_pipeline.curation.classifier import check_score
from data_pipeline.curation.labelled_files import RUBRIC_PATH

MAX_LINES = 80
MAX_CHARS = 8000
_VERSION_LINE = re.compile(r"^rubric_version:\s*(\S+)\s*$")
_FENCE = re.compile(r"^```(?:json)?\s*\n(.*?)\n```\s*$", re.DOTALL)


class Rubric(NamedTuple):
    version: str
    text: str


class Judgement(NamedTuple):
    score: int
    rationale: str


def load_rubric(path: str = RUBRIC_PATH) -> Rubric:
    """The rubric and its version (its first line must be `rubric_version: V`)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    first_line = text.split("\n", 1)[0]
    match = _VERSION_LINE.match(first_line)
    if not match:
        raise ValueError(f"{path}: the first line must be 'rubric_version: <version>', got {first_line!r}")
    return Rubric(match.group(1), text)


def opening(text: str) -> tuple[str, int]:
    """The part of a file the annotator sees (the first MAX_LINES lines, at most MAX_CHARS
    characters) and how many lines that is."""
    shown = "".join(text.splitlines(keepends=True)[:MAX_LINES])[:MAX_CHARS]
    return shown, len(shown.splitlines())


def messages(rubric: Rubric, record_id: str, shown: str, total_lines: int) -> list[dict]:
    shown_lines = len(shown.splitlines())
    scope = ("the whole file" if shown_lines >= total_lines
             else f"its first {shown_lines} of {total_lines} lines")
    return [{"role": "system", "content": rubric.text},
            {"role": "user", "content": f"File `{record_id}` ({scope}):\n\n```python\n{shown}\n```\n\n"
                                        "Answer with the JSON object only."}]


def parse_answer(answer: str) -> Judgement:
    """The score and rationale in an answer; ValueError for anything but one JSON object with an
    integer `score` on the rubric's scale and a non-empty string `rationale` (a ```json fence
    around it is allowed)."""
    body = answer.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        value = json.loads(body)
    except json.JSONDecodeError as e:
        raise ValueError(f"not a JSON object: {e}") from None
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    score = check_score(value.get("score"))
    rationale = value.get("rationale")
    if not isinstance(rationale, str) or not rationale.strip():
        raise ValueError("rationale missing or empty")
    return Judgement(score, rationale.strip())
