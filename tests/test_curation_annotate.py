"""Annotation against the local OpenAI-compatible server (tests/openai_server.py) through the one
LLM client: malformed answers are asked again and then recorded as failures with the raw answers,
429 and 500 are retried, every sampled file ends labelled or failed, a rerun asks nothing, and the
sample depends only on the seed."""

from __future__ import annotations

import collections
import json
import re

import pytest

from data_pipeline import annotate, records
from data_pipeline.curation import annotation_prompt
from data_pipeline.llm_client import LLMClient
from data_pipeline.stdlib_source import stdlib_files, stdlib_record

STDLIB_FILES = [p for p in stdlib_files() if "/" not in p][:40]


def _write_input(tmp_path, paths, name="stdlib.jsonl"):
    path = str(tmp_path / name)
    records.write_shard(path, [stdlib_record(p) for p in paths])
    return path


class FakeAnnotator:
    """Plays the LLM: a score from the file's line count, a fenced answer for some files, prose
    (unparseable) on the first ask for `flaky` files and on every ask for `stubborn` ones."""

    def __init__(self, stubborn=(), flaky=()):
        self.stubborn, self.flaky = set(stubborn), set(flaky)
        self.asked = collections.Counter()

    @staticmethod
    def expected_score(record_id: str) -> int:
        lines = len(stdlib_record(record_id.removeprefix("stdlib/"))["text"].splitlines())
        return 1 + lines % 5

    def __call__(self, body: dict) -> str:
        content = body["messages"][-1]["content"]
        record_id = re.search(r"File `([^`]+)`", content).group(1)
        self.asked[record_id] += 1
        if record_id in self.stubborn or (record_id in self.flaky and self.asked[record_id] == 1):
            return f"I would give {record_id} a solid four out of five."
        answer = json.dumps({"score": self.expected_score(record_id), "rationale": f"read {record_id}"})
        return f"```json\n{answer}\n```" if len(record_id) % 2 else answer


def _client(server, tmp_path):
    return LLMClient(base_url=server.base_url, model="fake-annotator", cache_dir=str(tmp_path / "cache"),
                     concurrency=4, timeout=5.0, backoff_base=0.01, backoff_max=0.05)


def _read(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_every_file_ends_labelled_or_failed_and_a_rerun_asks_nothing(openai_server, tmp_path):
    input_path = _write_input(tmp_path, STDLIB_FILES)
    sample_ids = [r["id"] for r in annotate.sample_records(input_path, 12, seed=7)]
    stubborn, flaky = sample_ids[:2], sample_ids[2:4]
    fake = FakeAnnotator(stubborn, flaky)
    server = openai_server(fake, {0: "429", 3: "500", 5: "500"})
    out = str(tmp_path / "labels.jsonl")

    summary = annotate.annotate(input_path, out, client=_client(server, tmp_path), num=12, seed=7, max_attempts=3)

    labels = _read(out)
    assert [label["id"] for label in labels] == sample_ids
    by_id = {label["id"]: label for label in labels}
    for record_id in stubborn:
        failed = by_id[record_id]
        assert failed["score"] is None and failed["rationale"] is None and failed["error"]
        assert len(failed["raw_answers"]) == 3 and all("solid four" in a for a in failed["raw_answers"])
    for record_id in sample_ids[2:]:
        label = by_id[record_id]
        assert label["score"] == FakeAnnotator.expected_score(record_id)
        assert label["rationale"] == f"read {record_id}" and label["model"] == "fake-annotator"
    assert {label["rubric_version"] for label in labels} == {annotation_prompt.load_rubric().version} == {"1"}
    assert all(by_id[i]["meta"]["attempts"] == 2 for i in flaky)
    assert summary["labelled"] == 10 and summary["failed"] == 2
    assert server.outcomes["429"] == 1 and server.outcomes["500"] == 2

    requests_before = server.requests
    first_run = open(out).read()
    rerun = annotate.annotate(input_path, out, client=_client(server, tmp_path), num=12, seed=7, max_attempts=3)
    assert server.requests == requests_before
    assert open(out).read() == first_run and rerun["client"]["api_calls"] == 0


def test_the_prompt_holds_the_rubric_and_the_opening(openai_server, tmp_path):
    input_path = _write_input(tmp_path, ["heapq.py"])
    bodies = []
    server = openai_server(lambda body: bodies.append(body) or '{"score": 5, "rationale": "heaps"}')
    annotate.annotate(input_path, str(tmp_path / "labels.jsonl"), client=_client(server, tmp_path), num=1)
    system, user = bodies[0]["messages"]
    assert system["content"] == annotation_prompt.load_rubric().text
    heapq_lines = stdlib_record("heapq.py")["text"].splitlines()
    assert f"first {annotation_prompt.MAX_LINES} of {len(heapq_lines)} lines" in user["content"]
    assert heapq_lines[annotation_prompt.MAX_LINES - 1] in user["content"]
    assert heapq_lines[annotation_prompt.MAX_LINES] not in user["content"].split("```python")[1]
    assert bodies[0]["model"] == "fake-annotator" and bodies[0]["temperature"] == 0.0


def test_sample_depends_on_seed_not_on_shard_order(tmp_path):
    forward = _write_input(tmp_path, STDLIB_FILES[:20], "a.jsonl") + "," + \
        _write_input(tmp_path, STDLIB_FILES[20:], "b.jsonl")
    reverse = _write_input(tmp_path, STDLIB_FILES[::-1], "c.jsonl")
    ids = lambda path, seed: [r["id"] for r in annotate.sample_records(path, 10, seed)]  # noqa: E731
    assert ids(forward, 1) == ids(reverse, 1)
    assert ids(forward, 1) != ids(forward, 2)
    assert len(set(ids(forward, 1))) == 10


@pytest.mark.parametrize("answer,problem", [
    ('{"score": 6, "rationale": "x"}', "not an integer from 1 to 5"),
    ('{"score": "4", "rationale": "x"}', "not an integer"),
    ('{"score": 4.5, "rationale": "x"}', "not an integer"),
    ('{"score": true, "rationale": "x"}', "not an integer"),
    ('{"score": 4}', "rationale missing"),
    ('[4, "x"]', "expected a JSON object"),
    ('Score: 4. {"score": 4, "rationale": "x"}', "not a JSON object"),
    ('{"score": 4, "rationale": "x"', "not a JSON object"),
])
def test_answers_that_are_not_the_rubric_format_are_refused(answer, problem):
    with pytest.raises(ValueError, match=problem):
        annotation_prompt.parse_answer(answer)


def test_help_says_what_it_reads_and_writes(capsys):
    with pytest.raises(SystemExit):
        annotate.main(["--help"])
    text = capsys.readouterr().out
    assert "record shards" in text and "rubric" in text and "--base-url" in text and "LABELS" in text
