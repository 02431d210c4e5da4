"""Checkpoints that really resume: after a SIGKILL, onto another mesh, past a damaged latest step
(moved aside, never deleted); and relaunches that cannot resume stop with a clear message and leave
every checkpoint byte-for-byte as it was."""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from file_tree import files_under

from phi1_jax.checkpoint import load_model
from phi1_jax.layer_stacking import stack_layers
from phi1_jax.metrics import read_metrics
from phi1_jax.train import train
from phi1_jax.train_checkpoint import RestoreError
from train_testlib import REPO, TINY_CONFIG_FILE, overrides, run_config


def _losses(workdir):
    return {int(r["step"]): r["loss"] for r in read_metrics(os.path.join(workdir, "metrics.jsonl")) if "loss" in r}


def _checkpoint_steps(workdir):
    root = os.path.join(workdir, "checkpoints")
    return sorted(int(name) for name in os.listdir(root) if name.isdigit()) if os.path.isdir(root) else []


def test_resume_after_sigkill_repeats_the_straight_run_exactly(tmp_path):
    # Dropout on, so the restored RNG matters as much as the parameters and the data position.
    straight = run_config(str(tmp_path / "straight"), steps=12)
    straight.model.resid_dropout = 0.1
    train(straight)
    expected = _losses(straight.workdir)

    # Same schedule (its horizon is 12 steps), but a run too long to finish before the kill.
    killed = run_config(str(tmp_path / "killed"), steps=100_000, schedule_steps=12)
    killed.model.resid_dropout = 0.1
    command = [sys.executable, "-m", "phi1_jax.train", f"--config={TINY_CONFIG_FILE}", *overrides(killed)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while not any(step >= 6 for step in _checkpoint_steps(killed.workdir)):
            assert process.poll() is None, process.stderr.read().decode()[-3000:]
            assert time.time() < deadline, "no checkpoint at step 6 within 240 s"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        process.kill()
        process.stderr.close()

    resumed = run_config(killed.workdir, steps=12)
    resumed.model.resid_dropout = 0.1
    summary = train(resumed)
    restart = summary["start_step"]
    assert 6 <= restart < 12 and summary["step"] == 12
    after = _losses(resumed.workdir)
    for step in range(restart + 1, 13):
        assert after[step] == expected[step], (step, after[step], expected[step])


def test_checkpoint_from_one_mesh_continues_on_another(tmp_path):
    reference = run_config(str(tmp_path / "reference"), steps=6)
    reference.mesh.update(dict(data=2, fsdp=4, tensor=1))
    reference.checkpoint.every_steps = 4
    train(reference)
    assert _checkpoint_steps(reference.workdir) == [4, 6]

    # The same run stopped after step 4 (its checkpoint written on (2,4,1)) goes on on (1,2,4).
    moved = run_config(str(tmp_path / "moved"), steps=6)
    shutil.copytree(os.path.join(reference.workdir, "checkpoints", "4"),
                    os.path.join(moved.workdir, "checkpoints", "4"))
    moved.mesh.update(dict(data=1, fsdp=2, tensor=4))
    summary = train(moved)
    assert (summary["start_step"], summary["step"]) == (4, 6)
    got, want = _losses(moved.workdir), _losses(reference.workdir)
    np.testing.assert_allclose([got[5], got[6]], [want[5], want[6]], rtol=1e-5)


def test_keep_n_plus_permanent_and_a_damaged_latest_step_is_moved_aside(tmp_path, caplog):
    config = run_config(str(tmp_path / "run"), steps=6)
    config.checkpoint.update(dict(every_steps=1, keep=2, permanent_every_steps=3))
    train(config)
    first = _losses(config.workdir)
    assert _checkpoint_steps(config.workdir) == [3, 5, 6]  # the last 2, plus every multiple of 3
    # Damage step 6 the way a crash mid-copy would: its parameter data is gone.
    params_dir = os.path.join(config.workdir, "checkpoints", "6", "params")
    for entry in os.listdir(params_dir):
        path = os.path.join(params_dir, entry)
        shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)

    with caplog.at_level(logging.WARNING):
        summary = train(config)
    assert summary["start_step"] == 5
    moved = [name for name in os.listdir(os.path.join(config.workdir, "checkpoints")) if name.startswith("6.damaged-")]
    assert len(moved) == 1 and os.listdir(os.path.join(config.workdir, "checkpoints", moved[0], "params")) == []
    assert any(f"checkpoint step 6 is damaged (params/_METADATA is missing): moved it to" in r.getMessage()
               and moved[0] in r.getMessage() for r in caplog.records)
    assert _losses(config.workdir)[6] == first[6]
    assert _checkpoint_steps(config.workdir) == [3, 5, 6]


def test_finetuning_starts_from_a_checkpoint_in_the_other_layer_layout(tmp_path):
    pretrained = run_config(str(tmp_path / "pretrained"), steps=2)
    train(pretrained)
    finetune = run_config(str(tmp_path / "finetune"), steps=1, init_from=pretrained.workdir, warmup_steps=5)
    finetune.model.scan_layers = True
    summary = train(finetune)
    assert (summary["start_step"], summary["step"]) == (0, 1)
    # The first step's learning rate is 0 (warmup starts there), so the finetune checkpoint holds
    # exactly the pretrained parameters, now stacked for nn.scan.
    _, before = load_model(pretrained.workdir)
    config, after = load_model(finetune.workdir)
    assert config.scan_layers and "layers" in after and "layers_0" not in after
    for a, b in zip(jax.tree.leaves(stack_layers(before, 2)), jax.tree.leaves(after)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))



def _stops_and_changes_nothing(config, message: str) -> None:
    checkpoints = os.path.join(config.workdir, "checkpoints")
    before = files_under(checkpoints)
    with pytest.raises(RestoreError, match=message):
        train(config)
    assert files_under(checkpoints) == before


def test_relaunches_that_cannot_resume_stop_and_change_no_checkpoint(tmp_path, caplog):
    config = run_config(str(tmp_path / "run"), steps=4)
    config.checkpoint.every_steps = 2
    train(config)
    checkpoints = os.path.join(config.workdir, "checkpoints")
    assert _checkpoint_steps(config.workdir) == [2, 4]
    saved_config = open(os.path.join(config.workdir, "config.json")).read()

    wider = run_config(config.workdir, steps=6)
    wider.checkpoint.every_steps = 2
    wider.model.hidden_size = 96
    _stops_and_changes_nothing(wider, r"cannot resume from checkpoint step 4: it holds a model with "
                                      r"hidden_size=64 \(this run: 96\).*\. Fix: relaunch with the config")
    assert open(os.path.join(config.workdir, "config.json")).read() == saved_config

    # What a run of another host count wrote: a data position per host (here two).
    data_state = os.path.join(checkpoints, "4", "data_state", "metadata")
    with open(data_state) as f:
        positions = json.load(f)
    positions["per_process"] *= 2
    with open(data_state, "w") as f:
        json.dump(positions, f)
    more = run_config(config.workdir, steps=5)
    more.checkpoint.every_steps = 2
    _stops_and_changes_nothing(more, r"step 4: it was written by 2 hosts and this run has 1.*"
                                     r"--config.checkpoint.allow_host_count_change=True")

    before = files_under(checkpoints)
    more.checkpoint.allow_host_count_change = True
    with caplog.at_level(logging.WARNING):
        summary = train(more)
    assert (summary["start_step"], summary["step"]) == (4, 5)
    assert any("written by 2 hosts, this run has 1" in r.getMessage() for r in caplog.records)
    assert {k: v for k, v in files_under(checkpoints).items() if not k.startswith("5")} == before
