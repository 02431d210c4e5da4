"""Every Beam stage (filter, dedup, decontaminate, cache) writes the same bytes on every runner:
the single process, the DirectRunner in-process, the DirectRunner in multi-process mode (two
worker processes) and Beam's DaskRunner on a dask.distributed LocalCluster of two worker
processes. Those two runners check what Dataflow needs too: DoFns that pickle, no module state,
no reliance on one process. Inputs are real standard-library files with planted duplicates and
contaminations, the embedded exercises for the cache. Runner start-up is slow, so one cluster
serves the whole module and each stage runs once per runner."""

from __future__ import annotations

import pytest
from file_tree import files_under

from data_pipeline import decontaminate, dedup, records, stdlib_source
from data_pipeline.seqio_data import cache
from data_pipeline import filter as filter_stage
from data_pipeline.seqio_data import tasks

from test_decontamination import HOSTS, NO_EMBEDDING, _planted_records
from test_dedup import _planted

DASK_RUNNER = "--runner=apache_beam.runners.dask.dask_runner.DaskRunner"
MULTI_PROCESS = ["--runner=DirectRunner", "--direct_running_mode=multi_processing",
                 "--direct_num_workers=2"]
FILTER_FILES = ["bisect.py", "colorsys.py", "graphlib.py", "this.py", "keyword.py", "token.py",
                "heapq.py", "fnmatch.py"]


@pytest.fixture(scope="module")
def runners():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        yield {"in_process": ["--runner=DirectRunner"], "multi_process": MULTI_PROCESS,
               "dask": [DASK_RUNNER, f"--dask_client_address={cluster.scheduler_address}"]}
        # The DaskRunner opens a client per pipeline and never closes it; closed here, before
        # their cluster goes, they do not spend 30 s trying to reconnect.
        for client in list(distributed.client._global_clients.values()):
            client.close()


def _assert_same(reference: dict[str, bytes], runs: dict, *, skip: tuple = ()) -> None:
    for runner, files in runs.items():
        assert sorted(files) == sorted(reference), runner
        for name, data in reference.items():
            if name not in skip:
                assert files[name] == data, (runner, name)


def test_dedup(runners, tmp_path):
    originals, plants = _planted()
    records.write_shards(str(tmp_path / "in"), originals + plants, num_shards=3)
    dedup.dedup(str(tmp_path / "in"), str(tmp_path / "single"))
    runs = {}
    for name, args in runners.items():
        dedup.dedup(str(tmp_path / "in"), str(tmp_path / name), beam_args=args)
        runs[name] = files_under(tmp_path / name)
    reference = files_under(tmp_path / "single")
    assert len(reference) == 5 and b'"near": 3' in reference["dedup_report.json"]
    _assert_same(reference, runs)


def test_decontaminate(runners, tmp_path):
    planted, _ = _planted_records()
    clean = [stdlib_source.stdlib_record(h) for h in HOSTS[4:]]
    records.write_shards(str(tmp_path / "in"), planted[:4] + clean, num_shards=3)
    outputs = {}
    for name, args in {"single": None, **runners}.items():
        decontaminate.decontaminate(str(tmp_path / "in"), str(tmp_path / name),
                                    str(tmp_path / name / "report.json"),
                                    methods=NO_EMBEDDING, beam_args=args)
        outputs[name] = files_under(tmp_path / name)
    reference = outputs.pop("single")
    assert b'"dropped": 4,' in reference["report.json"]
    _assert_same(reference, outputs)


def test_filter(runners, tmp_path):
    texts = [stdlib_source.stdlib_record(p) for p in FILTER_FILES]
    records.write_shards(str(tmp_path / "in"), [dict(r, text=r["text"][:1500]) for r in texts], 2)
    options = dict(num_shards=3, batch_size=5)
    single = filter_stage.filter_records(str(tmp_path / "in"), str(tmp_path / "single"), **options)
    runs, reports = {}, {}
    for name, args in runners.items():
        reports[name] = filter_stage.filter_with_beam(str(tmp_path / "in"), str(tmp_path / name),
                                                      args, **options)
        runs[name] = files_under(tmp_path / name)
    reference = files_under(tmp_path / "single")
    assert 0 < single["kept"] < single["scored"] == len(FILTER_FILES)
    # The report names its path ("single-process" or "beam"); all else is the same.
    _assert_same(reference, runs, skip=("report.json",))
    for report in reports.values():
        assert report == dict(single, path="beam")
    assert len({files["report.json"] for files in runs.values()}) == 1


def test_cache(runners, tmp_path):
    exercises = list(records.read_records(tasks.EMBEDDED_SOURCES["exercises"]))
    records.write_shards(str(tmp_path / "exercises"), exercises, 3)
    sources = {"exercises": str(tmp_path / "exercises")}
    runs = {}
    for name, args in runners.items():
        (task_dir,) = cache.cache_mixture("code_exercises", str(tmp_path / name), sources=sources,
                                          pipeline_args=args)
        runs[name] = files_under(task_dir)
    reference = runs.pop("in_process")
    assert sum(n.startswith("train.tfrecord") for n in reference) == 3
    assert b'"examples"' in reference["stats.train.json"]
    _assert_same(reference, runs)
