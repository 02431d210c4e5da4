"""The data ablation's plumbing on a reduced grid (one arm, 2 seeds x 2 tiny pools, a few steps,
then the finetuning half; every training costs tens of seconds of set-up on 2 cores, so the grid is
as small as the checks allow): the pools are disjoint, the seeds change the runs, each run reads
only its own pool's data, the exercise split keeps every family on one side, and the report has
every field with its type. The statistics between arms are checked on made-up runs. The effects
themselves need the full grid (docs/ablation.md)."""

import json
import os

import pytest

from data_pipeline import records
from data_pipeline.seqio_data import tasks
from evaluation import ablation_report, data_ablation, exercise_split, finetune_effect

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
ARM = "filtered_textbook"  # the arm with the most sources
RUN_FIELDS = {"arm": str, "seed": int, "pool": int, "sources": dict, "mixture_rates": dict, "steps": int,
              "tokens": int, "train_seconds": float, "eval_seconds": float, "own_validation_loss": float,
              "checkpoint": str, "humaneval_solution_loss": float, "humaneval_solution_tokens": int,
              "exercises_solution_loss": float, "exercises_solution_tokens": int, "humaneval_pass@1": float,
              "humaneval_problems": int}
ARM_FIELDS = {"arm": str, "runs": int, "steps": int, "tokens": int, "mixture_rates": dict,
              "humaneval_solution_tokens": int, "exercises_solution_tokens": int, "humaneval_problems": int,
              **{m: float for m in ablation_report.AVERAGED}, **{f"{m}_std": float for m in ablation_report.AVERAGED}}
PAIRED_FIELDS = {"mean": float, "std": float, "n": int, "same_sign": int, "larger_than_spread": bool}
FINETUNE_RUN_FIELDS = {"seed": int, "pool": int, "init_from": str, "checkpoint": str, "steps": int, "tokens": int,
                       "train_seconds": float, "eval_seconds": float, "before": dict, "after": dict}
FINETUNE_METRIC_FIELDS = {"heldout_exercises_solution_loss": float, "humaneval_solution_loss": float,
                          "heldout_pass@1": float, "heldout_problems": int}
PARTS = ("data", "train", "eval", "exercise_split", "finetune_train", "finetune_eval")


@pytest.fixture(scope="module")
def compile_once(tmp_path_factory):
    """Every training and evaluation of the grid compiles the same few programs; a persistent
    compilation cache for this module compiles each once instead of once per run."""
    import jax

    saved = {name: getattr(jax.config, name) for name in
             ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
              "jax_persistent_cache_min_entry_size_bytes")}
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("jax_cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    yield
    for name, value in saved.items():
        jax.config.update(name, value)


@pytest.fixture(scope="module")
def grid(tmp_path_factory, compile_once):
    out = str(tmp_path_factory.mktemp("ablation"))
    args = data_ablation._parser().parse_args(
        ["--out", out, "--steps", "2", "--max-files", "24", "--seeds", "2", "--pools", "2", "--arms", ARM,
         "--humaneval-limit", "2", "--max-new-tokens", "8", "--finetune", "--finetune-steps", "2",
         "--heldout-limit", "3"])
    return out, data_ablation.run(args)


def _ids(pattern):
    return {r["id"] for r in records.read_records(pattern)}


def _check(record, fields, where):
    for field, kind in fields.items():
        value = record.get(field)
        assert isinstance(value, kind) and (kind is bool or not isinstance(value, bool)), (where, field, value)


def test_every_number_in_the_report_has_its_field_and_type(grid):
    out, report = grid
    assert json.load(open(os.path.join(out, "report.json"))) == report
    assert report["seeds"] == [0, 1] and report["pools"] == 2 and report["max_files_per_pool"] == 24
    assert len(report["runs"]) == 2 * 2
    for run in report["runs"]:
        _check(run, RUN_FIELDS, run["checkpoint"])
        assert run["humaneval_problems"] == 2 and 0.0 <= run["humaneval_pass@1"] <= 1.0
        assert run["tokens"] == 2 * 8 * 256  # configs/tiny.py: batch 8 x 256 tokens
    [arm] = report["arms"]
    _check(arm, ARM_FIELDS, ARM)
    assert arm["arm"] == ARM and arm["runs"] == 4 and arm["humaneval_solution_loss_std"] > 0
    assert report["differences"] == []  # one arm
    finetune = report["finetune"]
    assert finetune["arm"] == ARM and len(finetune["runs"]) == 4
    for run in finetune["runs"]:
        _check(run, FINETUNE_RUN_FIELDS, run["checkpoint"])
        for side in ("before", "after"):
            _check(run[side], FINETUNE_METRIC_FIELDS, (run["checkpoint"], side))
        assert run["before"]["heldout_problems"] == 3
    for metric in finetune_effect.METRICS:
        for side in ("before", "after"):
            _check(finetune["summary"][metric][side], {"mean": float, "std": float, "n": int}, (metric, side))
        _check(finetune["summary"][metric]["difference"], PAIRED_FIELDS, metric)
    for part in PARTS:
        assert isinstance(report["wall_seconds_by_part"][part], float), part
    assert report["wall_seconds"] >= report["wall_seconds_by_part"]["data"]


def test_the_tables_and_the_plot_are_written(grid):
    out, report = grid
    table = open(os.path.join(out, "report.md")).read()
    assert f"| {ARM} | 4 |" in table and f"| finetuned {ARM} |" in table
    assert all(f"| {metric} |" in table for metric in finetune_effect.METRICS)
    assert os.path.getsize(os.path.join(out, "ablation.png")) > 10_000


def test_the_pools_are_disjoint_and_each_pool_is_curated_on_its_own(grid):
    _, report = grid
    pools = [_ids(p["data"]["unfiltered"]) for p in report["pool_data"]]
    assert all(pools) and not pools[0] & pools[1]
    assert report["data"] == report["pool_data"][0]["data"]
    chosen = data_ablation.pool_files(24, 2)
    assert [len(files) for files in chosen] == [24, 24]
    assert not {i for i, _ in chosen[0]} & {i for i, _ in chosen[1]}
    assert data_ablation.pool_files(24)[0] != chosen[0]  # one pool is not the first of two


def test_seeds_change_the_runs(grid):
    _, report = grid
    for pool in (0, 1):
        losses = {r["seed"]: r["humaneval_solution_loss"] for r in report["runs"] if r["pool"] == pool}
        assert losses[0] != losses[1], pool


def _made_up_runs():
    """Two arms, 2 seeds x 2 pools: arm b is better than arm a by 0.1 +- 0.01 on HumanEval."""
    runs = []
    for seed in (0, 1):
        for pool in (0, 1):
            base = 5.0 + pool + 0.3 * seed  # pool and seed differences much larger than the arms'
            for arm, shift in (("a", 0.0), ("b", -0.1 - 0.01 * (seed + pool))):
                runs.append({"arm": arm, "seed": seed, "pool": pool, "humaneval_solution_loss": base + shift,
                             "exercises_solution_loss": base + 0.5 * (seed - pool) * (arm == "b"),
                             "humaneval_pass@1": 0.0, "own_validation_loss": 1.0, "train_seconds": 1.0,
                             "eval_seconds": 1.0, **{k: 1 for k in ablation_report.CONSTANT}})
    return runs


def test_differences_are_paired_on_seed_and_pool_and_judged_against_their_spread():
    runs = _made_up_runs()
    arms = ablation_report.arm_summaries(runs, ["a", "b"])
    assert [a["runs"] for a in arms] == [4, 4]
    assert arms[0]["humaneval_solution_loss_std"] > 0.5  # the unpaired spread hides the difference
    [difference] = ablation_report.differences(runs, ["a", "b"])
    assert (difference["from"], difference["to"], difference["pairs"]) == ("a", "b", 4)
    humaneval = difference["humaneval_solution_loss"]
    assert humaneval["mean"] == pytest.approx(-0.11) and humaneval["std"] < 0.02
    assert humaneval["same_sign"] == 4 and humaneval["larger_than_spread"]
    exercises = difference["exercises_solution_loss"]  # +0.5, -0.5, 0, 0: no difference, a large spread
    assert exercises["mean"] == 0.0 and not exercises["larger_than_spread"]
    assert not difference["humaneval_pass@1"]["larger_than_spread"]
    one = ablation_report.paired([-0.2])
    assert one["std"] == 0.0 and not one["larger_than_spread"]  # one pair has no spread to compare with


def test_the_table_lists_the_differences_when_arms_have_several_runs():
    runs = _made_up_runs()
    report = {"arms": ablation_report.arm_summaries(runs, ["a", "b"]),
              "differences": ablation_report.differences(runs, ["a", "b"])}
    table = ablation_report.table_lines(report)
    assert "| a | b | 4 | -0.1100 ± 0.0082 (4/4) |" in "\n".join(table)
    assert table[-1].endswith("| humaneval_solution_loss |")


def test_each_run_reads_only_its_own_pools_data(grid):
    _, report = grid
    for run in report["runs"]:
        data = report["pool_data"][run["pool"]]["data"]
        pool, filtered, textbook = _ids(data["unfiltered"]), _ids(data["filtered"]), _ids(data["textbook"])
        assert filtered and filtered < pool and not pool & textbook
        mixture = tasks.register_mixture("code_textbook", sources=run["sources"], rates=run["mixture_rates"])
        shards = {shard for task in mixture.tasks for shard in task.source.shards}
        assert shards == {*records.expand_pattern(data["filtered"]), *records.expand_pattern(data["textbook"])}


def test_the_finetuning_reads_no_held_out_family_and_starts_from_the_best_arm(grid):
    _, report = grid
    finetune = report["finetune"]
    split = finetune["split"]
    assert split["finetune_families"] and split["heldout_families"]
    assert not set(split["finetune_families"]) & set(split["heldout_families"])
    finetuned = list(records.read_records(split["finetune"]))
    heldout = list(records.read_records(split["heldout"]))
    assert {r["meta"]["family"] for r in finetuned} <= set(split["finetune_families"])
    assert {r["meta"]["family"] for r in heldout} == set(split["heldout_families"])
    assert len(finetuned) == split["finetune_exercises"] and len(heldout) == split["heldout_exercises"]
    problems = [json.loads(line) for line in open(split["heldout_problems"])]
    assert [p["task_id"] for p in problems] == [r["id"] for r in heldout]
    assert finetune["arm"] == min(report["arms"], key=lambda a: a["humaneval_solution_loss"])["arm"]
    best = {(r["seed"], r["pool"]): r["checkpoint"] for r in report["runs"] if r["arm"] == finetune["arm"]}
    assert {(r["seed"], r["pool"]): r["init_from"] for r in finetune["runs"]} == best
    for run in finetune["runs"]:
        config = json.load(open(os.path.join(run["checkpoint"], "config.json")))
        assert config["data"]["mixture"] == "code_exercises" and config["data"]["sources"]["exercises"] == split["finetune"]
        assert config["train"]["seed"] == run["seed"] and config["train"]["weight_decay"] == 0.01
        assert run["before"] != run["after"]


def test_the_family_split_is_by_family_deterministic_and_checked():
    families = ["to_base", "from_base", "sequence", "digits", "handwritten", "units"]
    finetune, heldout = exercise_split.split_families(families)
    assert set(finetune) | set(heldout) == set(families) and not set(finetune) & set(heldout)
    assert exercise_split.split_families(list(reversed(families))) == (finetune, heldout)
    assert len(heldout) == round(len(families) * exercise_split.HELDOUT_FRACTION)
    with pytest.raises(ValueError, match="at least two families"):
        exercise_split.split_families(["only"] * 5)


def test_a_held_out_exercise_is_a_humaneval_problem_the_sandbox_can_run():
    record = {"id": "exercises/double", "meta": {"prompt": 'def double(x):\n    """Twice x."""\n',
                                                 "solution": "    return 2 * x\n", "entry_point": "double",
                                                 "tests": ["assert double(2) == 4", "assert double(\n    0) == 0"]}}
    problem = exercise_split.heldout_problem(record)
    namespace = {}
    exec(problem["prompt"] + problem["canonical_solution"] + problem["test"], namespace)
    namespace["check"](namespace["double"])
    with pytest.raises(AssertionError):
        namespace["check"](lambda x: x)


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


def test_the_tiny_finetune_config_is_phi1s_recipe_scaled_down():
    from phi1_jax.default_config import load_config_file

    tiny = load_config_file(os.path.join(CONFIGS, "tiny.py"))
    finetune = load_config_file(os.path.join(CONFIGS, "tiny_finetune.py"))
    phi1 = load_config_file(os.path.join(CONFIGS, "phi1_finetune.py"))
    assert finetune.model.to_dict() == tiny.model.to_dict() and finetune.data.mixture == "code_exercises"
    assert finetune.train.lr == pytest.approx(tiny.train.lr / 10) and finetune.train.weight_decay == phi1.train.weight_decay
    assert finetune.train.schedule == "linear" and finetune.train.warmup_steps < tiny.train.warmup_steps
    assert (finetune.train.global_batch_size, finetune.train.seq_len) == (tiny.train.global_batch_size, tiny.train.seq_len)


def test_bad_arms_and_a_missing_config_fail_before_any_data_work(tmp_path, capsys):
    with pytest.raises(SystemExit):
        data_ablation._parser().parse_args(["--out", str(tmp_path), "--arms", "filtered,everything"])
    assert "unknown arms ['everything']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        data_ablation.main(["--out", str(tmp_path / "out"), "--config", str(tmp_path / "nope.py")])
    assert "nope.py" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flag", ["--seeds", "--pools", "--max-files", "--steps"])
def test_zero_seeds_pools_files_or_steps_are_usage_errors(tmp_path, capsys, flag):
    with pytest.raises(SystemExit):
        data_ablation._parser().parse_args(["--out", str(tmp_path), flag, "0"])
    assert f"argument {flag}: must be at least 1, got 0" in capsys.readouterr().err


def test_more_pools_than_the_files_fill_is_a_usage_error_before_any_data_work(tmp_path, capsys):
    with pytest.raises(SystemExit):
        data_ablation.main(["--out", str(tmp_path / "out"), "--pools", "1000", "--max-files", "600"])
    assert "1000 pools of 600 files need 600000 files" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
