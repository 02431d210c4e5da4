"""Stop sequences for HumanEval-style completions (DESIGN.md data flow: "sample with KV cache ->
sandbox"): a completion is the function body only, so generated text is cut where the model starts
something at the top level again. The cut is exact, on the decoded text, at the earliest stop."""

from __future__ import annotations

from typing import Sequence

STOP_SEQUENCES = ("\ndef", "\nclass", "\nif", "\nprint", "\n#")


def truncate(text: str, stops: Sequence[str] = STOP_SEQUENCES) -> str:
    """`text` up to (not including) the earliest occurrence of any stop sequence."""
    found = [index for index in (text.find(stop) for stop in stops) if index != -1]
    return text[:min(found, default=len(text))]
