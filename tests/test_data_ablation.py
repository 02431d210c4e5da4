"""The data ablation's plumbing on a reduced run: every arm reads only its own data, the arms see
equal tokens, and the report has every field (the effect itself needs the full run)."""

import json
import os

import pytest

from data_pipeline import records
from data_pipeline.seqio_data import tasks
from evaluation import data_ablation

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
REPORT_FIELDS = {"arm": str, "sources": dict, "mixture_rates": dict, "steps": int, "tokens": int,
                 "train_seconds": float, "eval_seconds": float, "humaneval_solution_loss": float,
                 "humaneval_solution_tokens": int, "exercises_solution_loss": float,
                 "exercises_solution_tokens": int, "humaneval_pass@1": float, "humaneval_problems": int}


@pytest.fixture(scope="module")
def reduced_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("ablation"))
    args = data_ablation._parser().parse_args(
        ["--out", out, "--steps", "3", "--max-files", "80", "--humaneval-limit", "3", "--max-new-tokens", "8"])
    return out, data_ablation.run(args)


def _ids(pattern):
    return {r["id"] for r in records.read_records(pattern)}


def test_report_has_every_field_and_the_arms_see_equal_tokens(reduced_run):
    out, report = reduced_run
    assert [arm["arm"] for arm in report["arms"]] == list(data_ablation.ARMS)
    for arm in report["arms"]:
        for field, kind in REPORT_FIELDS.items():
            assert isinstance(arm[field], kind), (arm["arm"], field, arm.get(field))
        assert arm["humaneval_problems"] == 3 and 0.0 <= arm["humaneval_pass@1"] <= 1.0
        assert arm["humaneval_solution_tokens"] > 1000 and arm["humaneval_solution_loss"] > 0
    assert len({arm["tokens"] for arm in report["arms"]}) == 1
    assert report["arms"][0]["tokens"] == 3 * 8 * 256  # configs/tiny.py: batch 8 x 256 tokens
    assert json.load(open(os.path.join(out, "report.json"))) == report
    table = open(os.path.join(out, "report.md")).read().splitlines()
    assert len(table) == 2 + len(data_ablation.ARMS) and all(a in "".join(table) for a in data_ablation.ARMS)
    assert os.path.getsize(os.path.join(out, "ablation.png")) > 0


def test_each_arm_reads_only_its_own_data(reduced_run):
    _, report = reduced_run
    data = report["data"]
    pool, filtered, textbook = _ids(data["unfiltered"]), _ids(data["filtered"]), _ids(data["textbook"])
    assert filtered and filtered < pool and not pool & textbook
    expected = {"unfiltered": {data["unfiltered"]}, "filtered": {data["filtered"]},
                "filtered_textbook": {data["filtered"], data["textbook"]}}
    for arm in report["arms"]:
        mixture = tasks.register_mixture("code_textbook", sources=arm["sources"], rates=arm["mixture_rates"])
        shards = {shard for task in mixture.tasks for shard in task.source.shards}
        assert shards == set().union(*(records.expand_pattern(p) for p in expected[arm["arm"]]))


def test_an_unknown_arm_is_refused():
    with pytest.raises(ValueError, match="unknown arm 'everything'"):
        data_ablation.arm_sources("everything", {})


def test_the_350m_arms_differ_only_in_their_data_and_workdir():
    from phi1_jax.default_config import load_config_file

    configs = {arm: load_config_file(os.path.join(CONFIGS, f"ablation_350m.py:{arm}")).to_dict()
               for arm in data_ablation.ARMS}
    small = load_config_file(os.path.join(CONFIGS, "phi1_small.py"))
    for arm, config in configs.items():
        assert config["model"] == small.model.to_dict()
        assert config["train"]["steps"] == 36_000 and config["data"]["mixture"] == "code_textbook"
        rest = {k: v for k, v in config.items() if k not in ("data", "workdir")}
        assert rest == {k: v for k, v in configs["unfiltered"].items() if k not in ("data", "workdir")}
    assert configs["unfiltered"]["data"]["sources"]["stack"] != configs["filtered"]["data"]["sources"]["stack"]
    assert configs["filtered"]["data"]["sources"] != configs["filtered_textbook"]["data"]["sources"]
    assert configs["filtered"]["data"]["mixture_rates"]["textbook"] == 0.0
    assert configs["filtered_textbook"]["data"]["mixture_rates"]["textbook"] is None  # mixed by tokens
    finetune = load_config_file(os.path.join(CONFIGS, "ablation_350m_finetune.py"))
    assert finetune.model.to_dict() == small.model.to_dict() and finetune.data.mixture == "code_exercises"
    assert finetune.train.init_from == configs["filtered_textbook"]["workdir"]


def test_bad_arms_and_a_missing_config_fail_before_any_data_work(tmp_path, capsys):
    with pytest.raises(SystemExit):
        data_ablation._parser().parse_args(["--out", str(tmp_path), "--arms", "filtered,everything"])
    assert "unknown arms ['everything']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        data_ablation.main(["--out", str(tmp_path / "out"), "--config", str(tmp_path / "nope.py")])
    assert "nope.py" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
