"""Near-duplicate removal (data_pipeline.dedup) on real standard-library files: planted copies with
small edits, reordered blocks and changed whitespace are removed whichever way the input is
ordered, distinct files stay, the Beam pipeline writes the same files, bad input is counted and
reported without costing other records, and the embedded textbook and exercises go through it.
A bucket of near-copies costs edges linear in its size, and the Beam form's distributed connected
components equal the single process's union-find."""

import json
import os
import random

import apache_beam as beam
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from data_pipeline import dedup, embedded_data, records, stdlib_source
from data_pipeline.cleaning import band_buckets
from data_pipeline.cleaning import clusters as clusters_lib
from data_pipeline.cleaning import components, minhash

# Real modules of different sizes and topics; none is a near-duplicate of another.
STDLIB_FILES = [
    "textwrap.py", "heapq.py", "bisect.py", "colorsys.py", "json/encoder.py", "json/decoder.py",
    "shlex.py", "fnmatch.py", "glob.py", "calendar.py", "base64.py", "quopri.py", "sched.py",
    "graphlib.py", "numbers.py", "operator.py", "stat.py", "string.py", "tabnanny.py", "timeit.py",
    "wave.py", "zipapp.py", "reprlib.py", "queue.py", "netrc.py", "pprint.py", "cmd.py", "code.py",
    "codeop.py", "copy.py",
]


def _stdlib_records():
    return [stdlib_source.stdlib_record(name) for name in STDLIB_FILES]


def _small_edits(text: str) -> str:
    lines = text.splitlines()
    del lines[len(lines) // 3: len(lines) // 3 + 2]
    lines[len(lines) // 2] += "  # checked"
    return "\n".join(lines) + "\nif __name__ == '__main__':\n    pass\n"


def _reordered(text: str) -> str:
    lines = text.splitlines()
    middle = len(lines) // 2
    return "\n".join(lines[middle:] + lines[:middle]) + "\n"


def _whitespace(text: str) -> str:
    return "\n\n".join(line.replace("    ", "\t").rstrip() + "   " for line in text.splitlines())


PLANTS = {"small_edits": (0, _small_edits), "reordered": (4, _reordered),
          "whitespace": (9, _whitespace), "exact": (12, lambda text: text)}


def _planted():
    originals = _stdlib_records()
    plants = []
    for kind, (index, change) in PLANTS.items():
        original = originals[index]
        plants.append(dict(original, id=f"planted/{kind}", text=change(original["text"]),
                           source="textbook"))
    return originals, plants


def _kept_ids(out_dir):
    return sorted(r["id"] for r in records.read_records(os.path.join(out_dir, "records-*")))


def _clusters(out_dir):
    with open(os.path.join(out_dir, "clusters.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_planted_near_duplicates_removed_distinct_files_kept_in_any_order(tmp_path):
    originals, plants = _planted()
    everything = originals + plants
    outputs = []
    for seed in (0, 1):
        shuffled = list(everything)
        random.Random(seed).shuffle(shuffled)
        records.write_shards(str(tmp_path / f"in{seed}"), shuffled, num_shards=3)
        report = dedup.dedup(str(tmp_path / f"in{seed}"), str(tmp_path / f"out{seed}"))
        outputs.append((_kept_ids(tmp_path / f"out{seed}"), _clusters(tmp_path / f"out{seed}"),
                        report))
    (kept, clusters, report), (kept_again, clusters_again, report_again) = outputs
    assert kept == kept_again and clusters == clusters_again
    assert report == dict(report_again, input=report["input"])

    # One record of every planted pair survives: the longer text, ties by the smaller id.
    expected = {r["id"] for r in originals}
    for plant in plants:
        original = originals[PLANTS[plant["id"].split("/")[1]][0]]
        winner = min((original, plant), key=lambda r: (-len(r["text"]), r["id"]))
        expected.discard(original["id"])
        expected.add(winner["id"])
    assert kept == sorted(expected)
    assert report["records_read"] == len(everything) and report["kept"] == len(originals)
    assert report["dropped"] == {"exact": 1, "near": 3} and len(clusters) == 4
    matches = {}
    for cluster in clusters:
        (dropped,) = cluster["dropped"]
        assert dropped["similarity"] >= minhash.DEFAULT_THRESHOLD
        matches[cluster["kept"] if "planted" in cluster["kept"] else dropped["id"]] = \
            dropped["match"]
    # Whitespace changes leave the words, so that copy's estimated similarity is 1 but not exact.
    assert matches == {"planted/exact": "exact", "planted/reordered": "near",
                       "planted/small_edits": "near", "planted/whitespace": "near"}


def test_threshold_decides_whether_a_partial_copy_is_a_duplicate(tmp_path):
    originals = _stdlib_records()
    lines = originals[0]["text"].splitlines(keepends=True)
    half = dict(originals[0], id="planted/half", text="".join(lines[: len(lines) // 2]))
    records.write_shard(str(tmp_path / "in.jsonl"), originals + [half])
    # Half a file shares about half its shingles with the whole: distinct at the default 0.7 ...
    report = dedup.dedup(str(tmp_path / "in.jsonl"), str(tmp_path / "default"))
    assert report["kept"] == len(originals) + 1 and _clusters(tmp_path / "default") == []
    # ... a duplicate of the (longer) whole file at 0.3.
    dedup.dedup(str(tmp_path / "in.jsonl"), str(tmp_path / "low"),
                minhash.MinHashConfig(threshold=0.3))
    (cluster,) = _clusters(tmp_path / "low")
    assert cluster["kept"] == originals[0]["id"] and cluster["dropped"][0]["id"] == "planted/half"
    assert 0.3 <= cluster["dropped"][0]["similarity"] < 0.7


def test_beam_pipeline_writes_the_same_files(tmp_path):
    originals, plants = _planted()
    records.write_shards(str(tmp_path / "in"), originals + plants, num_shards=2)
    with open(tmp_path / "in" / "records-00001-of-00002.jsonl", "a") as f:
        f.write('{"broken\n' + json.dumps({"id": "empty", "text": "", "source": "s"}) + "\n")
    dedup.dedup(str(tmp_path / "in"), str(tmp_path / "single"))
    dedup.dedup(str(tmp_path / "in"), str(tmp_path / "beam"), beam_args=[])
    names = sorted(os.listdir(tmp_path / "single"))
    assert names == sorted(os.listdir(tmp_path / "beam"))
    assert "dedup_report.json" in names and "records-00001-of-00002.jsonl" in names
    report = json.loads((tmp_path / "beam" / "dedup_report.json").read_text())
    assert report["dropped"] == {"exact": 1, "near": 3}
    assert report["bad_input"]["malformed_lines"] == 1
    assert report["bad_input"]["rejected"] == {"empty": 1}
    for name in names:
        assert (tmp_path / "single" / name).read_bytes() == (tmp_path / "beam" / name).read_bytes()


def test_bad_input_is_counted_and_reported_and_costs_no_other_record(tmp_path):
    originals = _stdlib_records()[:6]
    good = tmp_path / "in" / "good.jsonl"
    os.makedirs(good.parent)
    records.write_shard(str(good), originals[:3])
    lines = [json.dumps(r) for r in originals[3:]]
    bad = [b"{not json", b'{"id": "x"}', b'{"id": "latin1", "text": "caf\xe9", "source": "s"}',
           json.dumps({"id": "empty", "text": " \n", "source": "s"}).encode(),
           json.dumps({"id": "huge", "text": "word " * 50_000, "source": "s"}).encode(),
           b'{"id": "surrogate", "text": "bad \\ud800 half", "source": "s"}']
    (tmp_path / "in" / "mixed.jsonl").write_bytes(
        b"\n".join([lines[0].encode(), *bad[:3], lines[1].encode(), *bad[3:], lines[2].encode()])
        + b"\n")
    report = dedup.dedup(str(tmp_path / "in"), str(tmp_path / "out"), max_chars=100_000)
    assert _kept_ids(tmp_path / "out") == sorted(r["id"] for r in originals)
    bad_input = report["bad_input"]
    assert bad_input["malformed_lines"] == 3
    assert [loc.split(":")[1] for loc in bad_input["malformed_locations"]] == ["2", "3", "4"]
    assert bad_input["rejected"] == {"empty": 1, "huge": 1, "undecodable": 1}
    assert {r["id"]: r["location"].rsplit("/", 1)[1] for r in bad_input["rejected_records"]} == {
        "empty": "mixed.jsonl:6", "huge": "mixed.jsonl:7", "surrogate": "mixed.jsonl:8"}


def test_embedded_textbook_and_exercises_and_the_cli(tmp_path, capsys):
    dedup.main(["--input", f"{embedded_data.TEXTBOOK_JSONL},{embedded_data.EXERCISES_JSONL}",
                "--out", str(tmp_path / "out")])
    report = json.loads((tmp_path / "out" / "dedup_report.json").read_text())
    clusters = _clusters(tmp_path / "out")
    dropped = [d["id"] for c in clusters for d in c["dropped"]]
    print("embedded data dedup drops:", clusters)
    assert report["records_read"] == 252 and report["kept"] == 252 - len(dropped)
    assert len(_kept_ids(tmp_path / "out")) == report["kept"]
    assert not set(dropped) & set(_kept_ids(tmp_path / "out"))
    assert f"kept {report['kept']} of 252 records" in capsys.readouterr().out


def test_help_says_what_it_reads_and_writes(capsys):
    with pytest.raises(SystemExit):
        dedup.main(["--help"])
    text = capsys.readouterr().out
    assert "Reads record shards" in text and "clusters.jsonl" in text and "--threshold" in text


def test_bad_options_are_refused_with_a_clear_message(tmp_path, capsys):
    with pytest.raises(SystemExit):
        dedup.main(["--input", "x", "--out", str(tmp_path), "--runner=DirectRunner"])
    assert "need --beam" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        dedup.main(["--input", "x", "--out", str(tmp_path), "--threshold", "1.5"])
    assert "threshold must be between 0 and 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        dedup.main(["--input", "x", "--out", str(tmp_path), "--threshold", "0.99"])
    assert "too close to 1 for 128 permutations" in capsys.readouterr().err


def _near_copies(count: int) -> list[dict]:
    """`count` distinct near-copies of one real file: each changes one of its lines."""
    original = stdlib_source.stdlib_record("bisect.py")
    lines = original["text"].splitlines()
    copies = []
    for i in range(count):
        edited = list(lines)
        edited[(i * 7) % len(edited)] += f"  # copy {i}"
        copies.append(dict(original, id=f"copy/{i:05d}", text="\n".join(edited)))
    return copies


def test_a_bucket_of_near_copies_costs_edges_linear_in_its_size(tmp_path):
    copies = _near_copies(1000)
    config = minhash.MinHashConfig()
    members = [(minhash.content_hash(r["text"]), minhash.signature(r["text"], config).hashvalues)
               for r in copies]
    # As one bucket: every copy is linked to the leader, so n - 1 edges, not n (n - 1) / 2 pairs.
    edges = list(band_buckets.star_edges(members, config.threshold))
    leader = min(digest for digest, _ in members)
    assert len(edges) == len(copies) - 1 and {a for a, _ in edges} == {leader}
    records.write_shard(str(tmp_path / "in.jsonl"), copies)
    report = dedup.dedup(str(tmp_path / "in.jsonl"), str(tmp_path / "out"))
    assert report["kept"] == 1 and report["clusters"] == 1
    assert report["dropped"] == {"exact": 0, "near": len(copies) - 1}


@pytest.mark.parametrize("rounds", [0, 1, components.DEFAULT_ROUNDS])
def test_distributed_components_equal_union_find(rounds):
    """Chains, stars and nodes with several smaller neighbours; with 0 rounds everything is left
    to the final settling step, with 1 part of it, with the default none of it."""
    rng = random.Random(rounds)
    nodes = [f"n{i:04d}" for i in range(400)]
    edges = [(nodes[i], nodes[i + 1]) for i in range(0, 120)]  # one long chain
    edges += [(nodes[200], nodes[i]) for i in range(201, 260)]  # a star
    edges += [(rng.choice(nodes[260:]), rng.choice(nodes[260:])) for _ in range(120)]
    edges = [(a, b) for a, b in edges if a != b]
    union = clusters_lib.UnionFind()
    for a, b in edges:
        union.union(a, b)
    expected = sorted({(n, union.find(n)) for edge in edges for n in edge})
    with test_pipeline.TestPipeline() as p:
        labels = p | beam.Create(edges) | components.ConnectedComponents(rounds)
        assert_that(labels, equal_to(expected))
