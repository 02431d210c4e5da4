"""`python -m phi1_jax.train` as a user runs it: clear errors before any compute, and SIGTERM
(preemption) ending in a checkpoint of the step it stopped at."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from train_testlib import REPO, TINY_CONFIG_FILE, overrides, run_config


def _start(*flags: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "phi1_jax.train", f"--config={TINY_CONFIG_FILE}", *flags],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _bad_workdir(tmp_path) -> str:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    return str(blocker / "workdir")


CASES = {
    "unknown_override": (lambda tmp: ["--config.train.lrr=0.1"], "lrr"),
    "ill_typed_override": (lambda tmp: ["--config.train.steps=many"], "steps"),
    "missing_data_file": (lambda tmp: ["--config.data.mixture=code_exercises",
                                       f"--config.data.sources.exercises={tmp}/no_such_shards-*.jsonl"],
                          "no_such_shards"),
    "missing_vocabulary": (lambda tmp: [f"--config.data.vocabulary={tmp}/no_such.model"], "no_such.model"),
    "unknown_eval_split": (lambda tmp: ["--config.data.eval_split=valid"], "data.eval_split 'valid'"),
    "missing_source_of_another_mixture": (lambda tmp: [f"--config.data.sources.stack={tmp}/no_stack/*.jsonl"],
                                          "data.sources.stack: no record shards match"),
    "unwritable_workdir": (lambda tmp: [f"--config.workdir={_bad_workdir(tmp)}"], "not writable"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_fails_clearly_before_any_compute(tmp_path, case):
    make_flags, message = CASES[case]
    flags = make_flags(tmp_path)
    if not any(f.startswith("--config.workdir") for f in flags):
        flags.append(f"--config.workdir={tmp_path}/workdir")
    process = _start(*flags)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode != 0
    assert message in stderr, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-2000:]
    # Nothing was built, trained or written.
    assert "parameters on mesh" not in stderr
    assert not os.path.exists(f"{tmp_path}/workdir/metrics.jsonl")
    assert not os.path.exists(f"{tmp_path}/workdir/checkpoints")


def test_sigterm_saves_the_current_step_and_exits_cleanly(tmp_path):
    config = run_config(str(tmp_path / "run"), steps=100_000, schedule_steps=12)
    config.checkpoint.every_steps = 1000  # so the only checkpoint is the one preemption writes
    process = _start(*overrides(config))
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.time() + 240
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.time() < deadline, "no training progress within 240 s"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-3000:]
    assert "preempted" in stderr
    last_logged = json.loads(metrics.read_text().splitlines()[-1])["step"]
    steps = [int(n) for n in os.listdir(tmp_path / "run" / "checkpoints") if n.isdigit()]
    assert steps == [last_logged] and 3 <= last_logged < 1000


def test_finetune_config_builds_on_phi1_without_importing_the_trainer():
    probe = ("import sys; from phi1_jax.default_config import load_config_file; "
             "c = load_config_file('configs/phi1_finetune.py'); "
             "print(c.model.hidden_size, c.model.scan_layers, c.train.lr, c.data.mixture, c.data.max_bad_fraction, "
             "'phi1_jax.train' in sys.modules, 'tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["2048", "True", "0.0001", "code_exercises", "0.001", "False", "False"]
