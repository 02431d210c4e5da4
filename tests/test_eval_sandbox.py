"""Hostile samples against the evaluation sandbox: each must fail and leave the machine as it was
(no stray process, files outside the sample's directory unchanged, the evaluator alive). CI runs
these as root, as users often do in containers. Attempts to forge a pass, and to reach other
processes, are in test_eval_forgery.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from evaluation.sandbox import Job, Limits, SandboxPool
from sandbox_testlib import (CHECK, MARKER, TIMEOUT, assert_no_sample_processes, choose_or_skip, pool,  # noqa: F401
                             processes_with, run, sample)  # (pool is a fixture)


@pytest.fixture
def outside():
    """A world-writable directory in the host's /tmp with a file in it: only isolation keeps a
    sample from it, since as an unprivileged uid it could otherwise write there."""
    directory = tempfile.mkdtemp(prefix=MARKER)
    os.chmod(directory, 0o777)
    victim = os.path.join(directory, "victim.txt")
    with open(victim, "w") as out:
        out.write("untouched")
    os.chmod(victim, 0o666)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def listener():
    """A TCP listener on 127.0.0.1 that records every connection it accepts."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    accepted: list = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except socket.timeout:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


def test_plain_program_passes_and_prints(pool):
    good = sample("print('hello from f')\nreturn x + 1")
    verdict, = run(pool, good)
    assert verdict.passed and verdict.result == "passed"
    assert "hello from f" in verdict.output


def test_infinite_loop_times_out_within_the_timeout(pool):
    start = time.monotonic()
    verdict, = run(pool, sample("while True:\n    pass"))
    assert (verdict.passed, verdict.result) == (False, "timed out")
    assert time.monotonic() - start < TIMEOUT + 1.5  # the worker is not held beyond the timeout


def test_memory_bomb_fails(pool):
    verdict, = run(pool, sample("block = bytearray(1 << 36)\nreturn x + 1"))
    assert not verdict.passed and "MemoryError" in verdict.result


def test_fork_bomb_and_escaped_daemon_are_killed(pool):
    fork_bomb = sample("import os\nwhile True:\n    os.fork()")
    daemon = sample(f"""\
        import subprocess
        daemon = subprocess.Popen(['sh', '-c', 'sleep 600; :', '{MARKER}'],
                                  start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print('started', daemon.pid, flush=True)
        return x
        """)
    double_fork = sample(f"""\
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                print('started', os.getpid(), flush=True)
                os.execv('/bin/sh', ['sh', '-c', 'sleep 600; :', '{MARKER}'])
            os._exit(0)
        time.sleep(0.2)
        return x
        """)
    verdicts = run(pool, fork_bomb, daemon, double_fork)
    assert not any(v.passed for v in verdicts), verdicts
    assert "BlockingIOError" in verdicts[0].result  # RLIMIT_NPROC stopped the bomb
    assert all("started" in v.output for v in verdicts[1:]), verdicts  # the daemons did start
    assert_no_sample_processes(pool)


def test_files_outside_are_untouched_and_shell_commands_harmless(pool, outside):
    victim = os.path.join(outside, "victim.txt")
    repo_file = os.path.abspath(__file__)
    with open(repo_file, "rb") as before:
        repo_bytes = before.read()
    attacks = [
        sample(f"import os\nos.remove({victim!r})\nreturn x"),
        sample(f"open({victim!r}, 'w').write('pwned')\nreturn x"),
        sample(f"open({os.path.join(outside, 'new.txt')!r}, 'w').write('pwned')\nreturn x"),
        sample(f"open({repo_file!r}, 'a').write('pwned')\nreturn x"),
        sample(f"import shutil\nshutil.rmtree({outside!r})\nreturn x"),
        sample(f"import os\nos.system('rm -rf {outside}; echo pwned > {outside}/shell.txt; "
               f"echo pwned >> {repo_file}; kill -9 -1')\nreturn x"),
        sample("import subprocess\nsubprocess.run(['sh', '-c', 'echo pwned > /tmp/"
               f"{MARKER}-escape'])\nreturn x"),
    ]
    verdicts = run(pool, *attacks)
    assert not any(v.passed for v in verdicts), verdicts
    assert not any("ModuleNotFoundError" in v.result for v in verdicts), verdicts  # every attack ran
    escape = f"/tmp/{MARKER}-escape"
    if pool.launcher.name == "none":
        if os.path.exists(escape):
            os.remove(escape)
        pytest.skip("without bwrap or unshare, world-writable directories are not isolated (documented)")
    assert sorted(os.listdir(outside)) == ["victim.txt"]
    with open(victim) as after:
        assert after.read() == "untouched"
    with open(repo_file, "rb") as after:
        assert after.read() == repo_bytes
    assert not os.path.exists(escape)


def test_sample_has_no_privileges(pool):
    """As root the sample still runs unprivileged: it passes only if it holds capabilities."""
    holds_capabilities = sample("""\
        caps = [l for l in open('/proc/self/status') if l.startswith('CapEff')][0]
        return x + 1 if int(caps.split()[1], 16) else x
        """)
    verdict, = run(pool, holds_capabilities)
    assert not verdict.passed


def test_network_connection_to_localhost_is_blocked(pool, listener):
    if pool.launcher.name == "none":
        pytest.skip("without bwrap or unshare the network is not isolated (documented)")
    port, accepted = listener
    connects = sample(f"""\
        import socket
        socket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'hello')
        return x + 1
        """)
    verdict, = run(pool, connects)
    assert not verdict.passed
    time.sleep(0.3)
    assert accepted == []


def test_stdout_flood_is_capped(pool):
    limit = pool.limits.output_bytes
    flood_forever = sample("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)")
    flood_then_pass = sample("import sys\nfor _ in range(200):\n    sys.stdout.write('y' * 65536)\nreturn x + 1")
    # A process left behind that floods the inherited stdout must not hold the worker either.
    flooding_orphan = sample(f"import subprocess\nsubprocess.Popen(['sh', '-c', 'yes; :', '{MARKER}'], "
                             "start_new_session=True)\nreturn x + 1")
    forever, then_pass, orphan = run(pool, flood_forever, flood_then_pass, flooding_orphan)
    assert (forever.passed, forever.result) == (False, "timed out")
    assert len(forever.output) <= limit
    assert then_pass.passed and 0 < len(then_pass.output) <= limit
    assert orphan.passed and len(orphan.output) <= limit
    assert_no_sample_processes(pool)


def test_file_size_and_open_file_limits_hold():
    limits = Limits(file_bytes=1 << 20, open_files=64)
    with SandboxPool(1, limits, quiet=True) as small:
        big_file, many_files = small.run([
            sample("open('big', 'wb').write(bytes(2 << 20))\nreturn x + 1"),
            sample("handles = [open(str(i), 'w') for i in range(100)]\nreturn x + 1"),
        ])
    assert not big_file.passed and not many_files.passed, (big_file, many_files)


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_no_process_outlives_an_interrupted_run(tmp_path, how):
    """The evaluator is interrupted while every worker runs an endless sample: its workers and
    their samples must all be gone afterwards."""
    problems = tmp_path / "problems.jsonl"
    samples = tmp_path / "samples.jsonl"
    problems.write_text(json.dumps({"task_id": "t/0", "prompt": "def f(x):\n", "entry_point": "f",
                                    "test": CHECK}) + "\n")
    endless = ("    import subprocess\n    subprocess.Popen(['sh', '-c', 'sleep 600; :', "
               f"'{MARKER}-run'], start_new_session=True)\n    while True:\n        pass\n")
    samples.write_text("".join(json.dumps({"task_id": "t/0", "completion": endless}) + "\n" for _ in range(4)))
    command = [sys.executable, "-m", "evaluation.humaneval", "--problems", str(problems), "--samples", str(samples),
               "--out", str(tmp_path / "results.jsonl"), "--timeout", "60", "--workers", "2", "--no-progress"]
    cli = subprocess.Popen(command, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while len(processes_with(lambda uid, c: f"{MARKER}-run" in c)) < 2:
            assert cli.poll() is None and time.monotonic() < deadline, "the samples never started"
            time.sleep(0.1)
        started = descendants(cli.pid)
        os.kill(cli.pid, how)
        cli.wait(timeout=30)
    finally:
        cli.kill()
    deadline = time.monotonic() + 10
    while alive(started) or processes_with(lambda uid, c: f"{MARKER}-run" in c):
        assert time.monotonic() < deadline, f"processes outlived the evaluator: {alive(started)}"
        time.sleep(0.1)


def descendants(root: int) -> set[int]:
    parents = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                parents[int(pid)] = int(stat.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> list[int]:
    return [pid for pid in processes_with(lambda uid, command: True) if pid in pids]


@pytest.mark.parametrize("name", ["bwrap", "unshare", "none"])
def test_closing_the_pool_mid_sample_leaves_nothing(name):
    choose_or_skip(name)
    marker = f"{MARKER}-close-{name}"
    endless = sample(f"import subprocess\nsubprocess.Popen(['sh', '-c', 'sleep 600; :', '{marker}'], "
                     "start_new_session=True)\nwhile True:\n    pass")
    pool = SandboxPool(1, isolation_name=name, quiet=True)
    uids = {uid for worker in pool._all for uid in (worker.uid, worker.checker_uid)}
    outcome: list = []

    def run_endless() -> None:
        try:
            outcome.append(pool.run([endless]))
        except RuntimeError as error:
            outcome.append(error)

    runner = threading.Thread(target=run_endless, daemon=True)
    runner.start()
    deadline = time.monotonic() + 30
    while not processes_with(lambda uid, command: marker in command):
        assert time.monotonic() < deadline, "the sample never started"
        time.sleep(0.05)
    pool.close()
    runner.join(10)
    assert isinstance(outcome[0], RuntimeError) and "closed" in str(outcome[0])
    assert processes_with(lambda uid, command: uid in uids or marker in command) == []


def test_environment_is_scrubbed_stdin_closed_and_directory_private(pool):
    """The worker itself runs with PYTHONPATH and more set; a sample sees only four variables."""
    look = sample("""\
        import os, sys
        print(sorted(os.environ), repr(sys.stdin.read()), os.getcwd() == os.environ['TMPDIR'], os.listdir('.'))
        open('left-behind.txt', 'w').write('x')
        print(os.getcwd())
        return x + 1
        """)
    first, second = run(pool, look, look)
    assert first.passed and second.passed
    for verdict in (first, second):
        listing, cwd = verdict.output.splitlines()
        assert listing == "['HOME', 'LANG', 'PATH', 'TMPDIR'] '' True []"
        if pool.launcher.name == "none":  # otherwise the directory lives in the worker's private /tmp
            deadline = time.monotonic() + 5  # removed right after the verdict went out
            while os.path.exists(cwd):
                assert time.monotonic() < deadline, cwd
                time.sleep(0.05)
    assert first.output.splitlines()[1] != second.output.splitlines()[1]


def test_walking_processes_that_vanish_never_raises():
    """The evaluator once died of ProcessLookupError: a process reaped between opening and reading
    its /proc/<pid>/stat makes the read fail with ESRCH. The walk that finds a worker's processes
    must treat that as "gone", here against a shell that forks and reaps all the time."""
    from evaluation import sandbox

    sleeper = subprocess.Popen(["sleep", "60"])
    stat = open(f"/proc/{sleeper.pid}/stat")
    sleeper.kill()
    sleeper.wait()
    with pytest.raises(ProcessLookupError):  # the kernel's side of the race
        stat.read()
    stat.close()
    churn = subprocess.Popen(["sh", "-c", "while :; do (:) & (:) & wait; done"])
    try:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            for pid, started in sandbox._descendants(churn.pid):
                sandbox._gone(pid, started)
    finally:
        churn.kill()
        churn.wait()


def test_how_honest_code_meets_its_tests(pool):
    """Top-level asserts are the test when there is no `check` (MBPP, synthetic exercises); the
    candidate's exceptions reach the tests as the same built-in type; its module state lasts
    across the calls of one sample; standard types that equal plain data pass."""
    counter = ("calls = []\ndef f(x):\n    calls.append(x)\n    if x < 0:\n        raise ValueError('negative')\n"
               "    return len(calls)\n")
    expects_error = ("def check(candidate):\n    try:\n        candidate(-1)\n    except ValueError as error:\n"
                     "        assert str(error) == 'negative'\n    else:\n        raise AssertionError\n"
                     "    assert candidate(5) == 2\n")
    counter_mod = "import collections\ndef f(s):\n    return collections.Counter(s)\n"
    verdicts = run(pool,
                   Job(counter, "assert f(1) == 1\nassert f(2) == 2\n", "f", TIMEOUT),
                   Job(counter, "assert f(1) == 1\nassert f(2) == 3\n", "f", TIMEOUT),
                   Job(counter, expects_error, "f", TIMEOUT),
                   Job(counter_mod, "assert f('aab') == {'a': 2, 'b': 1}\n", "f", TIMEOUT),
                   Job("def g(x):\n    return x\n", "assert f(1) == 1\n", "f", TIMEOUT))
    assert [v.passed for v in verdicts] == [True, False, True, True, False], verdicts
    assert verdicts[1].result == "failed: AssertionError: "
    assert verdicts[4].result == "failed: the program raised NameError: the program defines no 'f'"
