"""Shared pieces of the sandbox test files: hostile samples of one shape and a pool per isolation
level that works on this machine (CI: as root, with bubblewrap installed)."""

from __future__ import annotations

import os
import shutil
import textwrap
import time

import pytest

from evaluation import isolation
from evaluation.sandbox import Job, SandboxPool

TIMEOUT = 2.0
CHECK = "\ndef check(candidate):\n    assert candidate(1) == 2\n"
MARKER = f"phi1-hostile-{os.getpid()}"


def sample(body: str, before: str = "") -> Job:
    """A program whose `f(x)` should return x + 1; `body` is the hostile function body."""
    source = textwrap.dedent(before) + "def f(x):\n" + textwrap.indent(textwrap.dedent(body), "    ")
    return Job(source, CHECK, "f", TIMEOUT)


def processes_with(predicate) -> list[int]:
    """Pids of live (non-zombie) processes whose (uid, cmdline) satisfy `predicate`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fields["State"].split()[0] != "Z" and predicate(int(fields["Uid"].split()[0]), command):
            found.append(int(pid))
    return found


def choose_or_skip(name: str) -> None:
    """Skip a level this machine cannot provide; but in CI, which installs bubblewrap, a bwrap that
    is present and unusable is a sandbox bug (a checkout under /tmp once made it so, silently)."""
    try:
        isolation.choose(name)
    except RuntimeError:
        if name == "bwrap" and os.environ.get("CI") and shutil.which("bwrap"):
            raise
        pytest.skip(f"{name} does not work here")


@pytest.fixture(scope="module", params=["bwrap", "unshare", "none"])
def pool(request):
    """A pool per isolation level that works on this machine (CI: as root, with and without bwrap)."""
    choose_or_skip(request.param)
    with SandboxPool(2, isolation_name=request.param, quiet=True) as pool:
        yield pool


def run(pool: SandboxPool, *jobs: Job):
    verdicts = pool.run(jobs)
    assert all(v is not None for v in verdicts)
    return verdicts


def assert_no_sample_processes(pool: SandboxPool) -> None:
    """Nothing carries the marker, and a candidate's uid runs nothing but, per worker, the one
    blank candidate process forked ahead of the next job (each worker keeps its checker too),
    once that one has settled into waiting for its job."""
    uids = {worker.uid for worker in pool._all}
    deadline = time.monotonic() + 5.0
    while True:
        marked = processes_with(lambda uid, command: MARKER in command)
        running = {uid: processes_with(lambda owner, command: owner == uid) for uid in uids}
        settled = all(len(pids) <= 1 and all(_is_blank_candidate(pid) for pid in pids) for pids in running.values())
        if (settled and not marked) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert marked == [] and settled, f"stray sample processes: {marked} {running}"


def _is_blank_candidate(pid: int) -> bool:
    """A spare is blocked reading its job from a pipe, has run no program and started nothing."""
    try:
        with open(f"/proc/{pid}/wchan") as wchan, open(f"/proc/{pid}/cmdline", "rb") as cmdline, \
                open(f"/proc/{pid}/task/{pid}/children") as children:
            return ("pipe_read" in wchan.read() and b"evaluation.sandbox_server" in cmdline.read()
                    and children.read().split() == [])
    except OSError:  # gone meanwhile
        return False
