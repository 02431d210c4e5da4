"""Synthetic textbooks and exercises (DESIGN.md data flow: "synthetic textbooks / exercises
(OpenAI-compatible API)"), the parts behind `python -m data_pipeline.synth`:

- `textbook_topics.json`, `exercise_topics.json`: the prompt data (topic tree, audiences, styles;
  exercise topics, name parts, difficulties);
- `prompts`: every prompt as a pure function of (seed, index);
- `textbook_check`: validation of generated textbook sections;
- `exercise_check`: parsing of generated exercises and their verification in the sandbox.
"""


class Rejected(ValueError):
    """A generated answer that is not kept; `reason` is its short category in the report."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
