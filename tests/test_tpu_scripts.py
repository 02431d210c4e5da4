"""tpu/*.sh as a user runs them without a GCP project: `--dry-run` prints exactly the gcloud commands
(one per line) and runs nothing, `--help` says what each reads and writes, bad arguments stop with
the usage and exit 2, shellcheck finds nothing, and the shell that each worker would run does what
it says when bash runs it here (quoting through two shells, the SIGTERM stop)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TPU = os.path.join(REPO, "tpu")
SCRIPTS = ("create", "install", "launch", "logs", "stop", "delete")
COMMIT = "0123456789abcdef0123456789abcdef01234567"
SSH = "gcloud compute tpus tpu-vm ssh"


def _run(script: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The script with none of the settings' environment variables, so only its arguments count."""
    clean = {k: v for k, v in os.environ.items()
             if k not in {"TPU_NAME", "ZONE", "PROJECT", "ACCELERATOR", "RUNTIME", "SPOT", "QUEUED",
                          "REPO_URL", "COMMIT", "WORKDIR", "CLOUDSDK_CORE_PROJECT"}}
    return subprocess.run([os.path.join(TPU, f"{script}.sh"), *args], capture_output=True, text=True,
                          env={**clean, **(env or {})}, cwd=REPO, timeout=60)


def _dry(script: str, *args: str, env: dict | None = None) -> list[str]:
    result = _run(script, "--dry-run", *args, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # hints are for real runs; a dry run prints only the commands
    return result.stdout.splitlines()


V5E = ("--name=phi1-v5e", "--zone=us-west4-a", "--project=my-proj")
V5E_AT = "phi1-v5e --project=my-proj --zone=us-west4-a"
# The launch's preflight (a phi-1 compile, minutes) is tests/test_preflight.py's; here it is skipped.
LAUNCH_ARGS = (*V5E, "--skip-preflight", "--workdir=gs://my-bucket/phi1/", "--env=LIBTPU_INIT_ARGS=--xla_enable_async_all_gather=true",
               "configs/phi1.py", "--config.train.microbatches=2", "--config.data.sources.stack=gs://my-bucket/stack/*.jsonl")
LAUNCH_REMOTE = (
    "cd phi1-jax; mkdir -p logs; "
    "if [ -f train.pid ] && kill -0 $(cat train.pid) 2>/dev/null; then "
    "echo \"$(hostname): already training (pid $(cat train.pid)): run tpu/stop.sh first\" >&2; exit 1; fi; "
    "PHI1_DISTRIBUTED=1 LIBTPU_INIT_ARGS=--xla_enable_async_all_gather=true "
    "nohup .venv/bin/python -m phi1_jax.train --config=configs/phi1.py --config.workdir=gs://my-bucket/phi1 "
    "--config.train.microbatches=2 '\\''--config.data.sources.stack=gs://my-bucket/stack/*.jsonl'\\'' "
    ">> logs/train-$(hostname).log 2>&1 < /dev/null & echo $! > train.pid; "
    "echo \"$(hostname): training, pid $(cat train.pid), log ~/phi1-jax/logs/train-$(hostname).log\"")

DRY_RUNS = {
    "create_vm_v4_32": (
        "create", ("--project=my-proj", "--accelerator=v4-32"),
        ["gcloud compute tpus tpu-vm create phi1 --project=my-proj --zone=us-central2-b "
         "--accelerator-type=v4-32 --version=tpu-ubuntu2204-base"]),
    "create_queued_spot_v5e_256": (
        "create", (*V5E, "--accelerator=v5litepod-256", "--spot", "--queued"),
        ["gcloud compute tpus queued-resources create phi1-v5e --project=my-proj --zone=us-west4-a "
         "--node-id=phi1-v5e --accelerator-type=v5litepod-256 --runtime-version=v2-alpha-tpuv5-lite --spot"]),
    "create_from_environment": (
        "create", ("--runtime=tpu-vm-v4-base",),
        ["gcloud compute tpus tpu-vm create big --project=env-proj --zone=us-central2-b "
         "--accelerator-type=v4-128 --version=tpu-vm-v4-base --spot"],
        {"TPU_NAME": "big", "PROJECT": "env-proj", "ACCELERATOR": "v4-128", "SPOT": "1"}),
    "install": (
        "install", (*V5E, "--repo=https://github.com/acme/phi1-jax.git", f"--commit={COMMIT}"),
        [f"{SSH} {V5E_AT} --worker=all '--command=set -e; "
         "command -v git >/dev/null && python3 -m venv -h >/dev/null || "
         "{ sudo apt-get -qq update && sudo apt-get -qq install -y git python3-venv; }; "
         "[ -d phi1-jax/.git ] || git clone -q https://github.com/acme/phi1-jax.git phi1-jax; cd phi1-jax; "
         f"git fetch -q origin {COMMIT}; git checkout -q --detach {COMMIT}; "
         "[ -d .venv ] || python3 -m venv .venv; "
         ".venv/bin/pip install -q -c constraints.txt -e . \"jax[tpu]==$(sed -n s/^jax==//p constraints.txt)\" "
         "-f https://storage.googleapis.com/jax-releases/libtpu_releases.html; "
         "echo \"$(hostname): phi1-jax at $(git rev-parse HEAD), jax "
         "$(.venv/bin/python -c \"import jax; print(jax.__version__)\")\"'"]),
    "launch_v5e_256": ("launch", LAUNCH_ARGS, [f"{SSH} {V5E_AT} --worker=all '--command={LAUNCH_REMOTE}'"]),
    "logs_tail": (
        "logs", ("--project=my-proj",),
        [f"{SSH} phi1 --project=my-proj --zone=us-central2-b --worker=0 '--command=tail -n 50 phi1-jax/logs/train-*.log'"]),
    "logs_follow_all": (
        "logs", (*V5E, "--worker=all", "--lines=5", "--follow"),
        [f"{SSH} {V5E_AT} --worker=all '--command=tail -n 5 -F phi1-jax/logs/train-*.log'"]),
    "logs_fetch": (
        "logs", (*V5E, "--fetch=run-logs", "--workdir=gs://my-bucket/phi1"),
        [f"{SSH} {V5E_AT} --worker=all '--command=gcloud storage cp phi1-jax/logs/train-*.log gs://my-bucket/phi1/logs/'",
         "gcloud storage cp 'gs://my-bucket/phi1/logs/*' run-logs/"]),
    "stop": (
        "stop", V5E,
        [f"{SSH} {V5E_AT} --worker=all '--command=cd phi1-jax; "
         "if [ -f train.pid ] && kill -0 $(cat train.pid) 2>/dev/null; then kill -TERM $(cat train.pid); "
         "while kill -0 $(cat train.pid) 2>/dev/null; do sleep 5; done; echo \"$(hostname): training exited\"; "
         "else echo \"$(hostname): not training\"; fi'"]),
    "delete_vm": ("delete", ("--project=my-proj",),
                  ["gcloud compute tpus tpu-vm delete phi1 --project=my-proj --zone=us-central2-b --quiet"]),
    "delete_queued": ("delete", (*V5E, "--queued"),
                      ["gcloud compute tpus queued-resources delete phi1-v5e --project=my-proj --zone=us-west4-a "
                       "--force --quiet"]),
}


@pytest.mark.parametrize("case", sorted(DRY_RUNS))
def test_dry_run_prints_exactly_the_gcloud_commands(case):
    script, args, expected, *env = DRY_RUNS[case]
    assert _dry(script, *args, env=env[0] if env else None) == expected


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_says_what_the_script_reads_and_writes(script):
    result = _run(script, "--help")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith(f"usage: tpu/{script}.sh ")
    for option in ("--dry-run", "--project=PROJECT", "--zone=ZONE", "--name=NAME"):
        assert option in result.stdout
    assert "gcloud" in result.stdout  # each says which gcloud command it drives


BAD_ARGUMENTS = {
    "unknown_option": ("create", ("--project=my-proj", "--accelerator-type=v4-8"), "unknown argument '--accelerator-type=v4-8'"),
    "bad_accelerator": ("create", ("--project=my-proj", "--accelerator=v4_32"), "bad --accelerator 'v4_32'"),
    "no_default_runtime": ("create", ("--project=my-proj", "--accelerator=v3-8"), "pass --runtime=VERSION"),
    "missing_value": ("delete", ("--project=my-proj", "--zone"), "--zone needs a value"),
    "bad_zone": ("stop", ("--project=my-proj", "--zone=central"), "bad --zone 'central'"),
    "bad_name": ("stop", ("--project=my-proj", "--name=Phi_1"), "bad --name 'Phi_1'"),
    "short_commit": ("install", ("--project=my-proj", "--repo=https://x.org/r.git", "--commit=abc123"), "bad --commit 'abc123'"),
    "local_workdir": ("launch", ("--project=my-proj", "--workdir=/tmp/run", "configs/tiny.py"), "bad --workdir '/tmp/run'"),
    "no_workdir": ("launch", ("--project=my-proj", "configs/tiny.py"), "--workdir=gs://BUCKET/RUN is missing"),
    "no_config": ("launch", ("--project=my-proj", "--workdir=gs://b1/run"), "CONFIG is missing"),
    "missing_config": ("launch", ("--project=my-proj", "--workdir=gs://b1/run", "configs/nope.py"), "no config file configs/nope.py"),
    "bad_override": ("launch", ("--project=my-proj", "--workdir=gs://b1/run", "configs/tiny.py", "--train.lr=1"), "unknown argument '--train.lr=1'"),
    "workdir_override": ("launch", ("--project=my-proj", "--workdir=gs://b1/run", "configs/tiny.py", "--config.workdir=gs://b1/x"), "--workdir=gs://..."),
    "bad_env": ("launch", ("--project=my-proj", "--workdir=gs://b1/run", "--env=1X=2", "configs/tiny.py"), "bad --env '1X=2'"),
    "no_accelerator": ("launch", ("--project=my-proj", "--workdir=gs://b1/run", "configs/tiny.py"), "--accelerator=TYPE is missing"),
    "bad_launch_accelerator": ("launch", ("--project=my-proj", "--workdir=gs://b1/run", "--accelerator=v5e", "configs/tiny.py"), "bad --accelerator 'v5e'"),
    "bad_worker": ("logs", ("--project=my-proj", "--worker=first"), "bad --worker 'first'"),
    "fetch_without_workdir": ("logs", ("--project=my-proj", "--fetch=out"), "--fetch needs --workdir"),
    "no_project": ("delete", (), "no project"),
}


@pytest.mark.parametrize("case", sorted(BAD_ARGUMENTS))
def test_bad_argument_prints_the_usage_and_exits_2(case, tmp_path):
    script, args, message = BAD_ARGUMENTS[case]
    # An empty gcloud configuration, where gcloud is installed: no active project to fall back to.
    result = _run(script, "--dry-run", *args, env={"CLOUDSDK_CONFIG": str(tmp_path)})
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"{script}.sh: error: " in result.stderr and message in result.stderr, result.stderr
    assert f"usage: tpu/{script}.sh " in result.stderr


def test_shellcheck_finds_nothing():
    if not shutil.which("shellcheck"):
        if os.environ.get("CI"):
            pytest.fail("shellcheck is missing: CI (.ci/run) installs it")
        pytest.skip("shellcheck is not installed (apt-get install shellcheck); CI installs it")
    scripts = sorted(os.path.join(TPU, name) for name in os.listdir(TPU) if name.endswith(".sh"))
    assert len(scripts) == len(SCRIPTS) + 1  # and env.sh
    result = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True, cwd=TPU, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def _worker_command(script: str, *args: str) -> str:
    """The --command that the dry run hands to `gcloud ... ssh`, as the worker's shell receives it:
    the printed line evaluated by bash with gcloud being a function that prints its last argument."""
    line, = _dry(script, *args)
    result = subprocess.run(["bash", "-c", 'gcloud() { printf "%s" "${@: -1}"; }; eval "$1"', "_", line],
                            capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.startswith("--command=")
    return result.stdout[len("--command="):]


def _worker_home(tmp_path, python_source: str) -> tuple[str, str]:
    """A worker's home as install.sh leaves it, whose .venv/bin/python runs `python_source`."""
    home = tmp_path / "home"
    venv_bin = home / "phi1-jax" / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    python = venv_bin / "python"
    python.write_text(f"#!{sys.executable}\n{python_source}")
    python.chmod(0o755)
    return str(home), str(home / "phi1-jax")


def test_launch_runs_the_train_command_with_its_arguments_and_environment_on_a_worker(tmp_path):
    """Through both shells (the local one and the worker's), each argument arrives whole."""
    home, project = _worker_home(tmp_path, (
        "import json, os, sys\n"
        "print(json.dumps({'argv': sys.argv[1:], 'PHI1_DISTRIBUTED': os.environ.get('PHI1_DISTRIBUTED'),\n"
        "                  'LIBTPU_INIT_ARGS': os.environ.get('LIBTPU_INIT_ARGS')}))\n"))
    command = _worker_command("launch", *LAUNCH_ARGS)
    result = subprocess.run(["bash", "-c", command], cwd=home, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    host = subprocess.run(["hostname"], capture_output=True, text=True).stdout.strip()
    assert f"{host}: training, pid " in result.stdout
    log = os.path.join(project, "logs", f"train-{host}.log")
    deadline = time.time() + 30
    while not (os.path.exists(log) and open(log).read().endswith("\n")) and time.time() < deadline:
        time.sleep(0.1)
    assert json.loads(open(log).read()) == {
        "argv": ["-m", "phi1_jax.train", "--config=configs/phi1.py", "--config.workdir=gs://my-bucket/phi1",
                 "--config.train.microbatches=2", "--config.data.sources.stack=gs://my-bucket/stack/*.jsonl"],
        "PHI1_DISTRIBUTED": "1", "LIBTPU_INIT_ARGS": "--xla_enable_async_all_gather=true"}


def test_stop_sends_sigterm_and_waits_for_the_checkpoint_then_launch_refuses_a_second_run(tmp_path):
    home, project = _worker_home(tmp_path, (
        "import signal, sys, time\n"
        "def checkpoint(*_):\n"
        "    time.sleep(1)  # a checkpoint takes a while; stop.sh must wait for it\n"
        "    open('checkpoint_written', 'w').write('ok')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, checkpoint)\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        "    time.sleep(0.05)\n"))
    launch = _worker_command("launch", "--project=my-proj", "--skip-preflight", "--workdir=gs://b1/run",
                             "configs/tiny.py")
    assert subprocess.run(["bash", "-c", launch], cwd=home, capture_output=True, timeout=60).returncode == 0
    pid = int(open(os.path.join(project, "train.pid")).read())
    try:
        deadline = time.time() + 30
        logs = os.path.join(project, "logs")
        while "ready" not in "".join(open(os.path.join(logs, f)).read() for f in os.listdir(logs)):
            assert time.time() < deadline, "the launched process did not start"
            time.sleep(0.1)
        again = subprocess.run(["bash", "-c", launch], cwd=home, capture_output=True, text=True, timeout=60)
        assert again.returncode == 1 and f"already training (pid {pid})" in again.stderr

        stop = _worker_command("stop", "--project=my-proj").replace("sleep 5", "sleep 0.2")
        result = subprocess.run(["bash", "-c", stop], cwd=home, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.endswith(": training exited\n")
        assert open(os.path.join(project, "checkpoint_written")).read() == "ok"  # written before stop returned
        result = subprocess.run(["bash", "-c", stop], cwd=home, capture_output=True, text=True, timeout=60)
        assert result.stdout.endswith(": not training\n")
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_the_readme_shows_what_the_v5e_256_launch_prints():
    readme = open(os.path.join(TPU, "README.md")).read()
    printed = _dry("launch", "--project=my-project", "--name=phi1", "--zone=us-west4-a", "--skip-preflight",
                   "--workdir=gs://my-bucket/runs/phi1", "configs/phi1.py",
                   "--config.data.cache_dir=gs://my-bucket/data/cache")
    assert len(printed) == 1 and f"```\n{printed[0]}\n```" in readme
