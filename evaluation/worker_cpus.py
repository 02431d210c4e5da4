"""CPU isolation between sandbox workers (DESIGN.md data flow: "sandbox -> pass@k"): a cpuset
cgroup per worker of `evaluation.sandbox`, holding the one CPU the pool gives that worker.

A worker's server pins itself to its CPU with `sched_setaffinity`, but a sample may widen its own
affinity again and start spinners in new sessions, taking CPU time from the sample of another
worker until it is killed. Inside a cpuset the kernel caps every affinity at the cpuset's CPUs,
and every process a worker starts stays in its cgroup, so a sample then competes only with its own
worker's processes.

Where: cgroup v2 when our cgroup offers the cpuset controller to its children (it is enabled for
them if need be), else the cgroup v1 cpuset hierarchy; both need root or a delegated cgroup. Where
neither can be written (an unprivileged user without delegation, a container with a read-only
/sys/fs/cgroup) `Cpuset.create` returns None and the pool warns that a sample can take CPU time
from the other workers' samples for as long as its timeout. A pool removes its cpusets when it
closes; those of an evaluator killed before it could are removed by the next pool
(`remove_stale`).
"""

from __future__ import annotations

import os
import secrets
import time
from typing import Optional


def _own_cgroups() -> tuple[Optional[str], Optional[str]]:
    """(our cgroup v2 directory, our cgroup v1 cpuset directory), each None where not mounted."""
    mounts: dict[str, str] = {}
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            fields = line.split()
            fstype, options = fields[fields.index("-") + 1], fields[-1].split(",")
            if fstype == "cgroup2":
                mounts.setdefault("", fields[4])
            elif fstype == "cgroup" and "cpuset" in options:
                mounts.setdefault("cpuset", fields[4])
    paths: dict[str, str] = {}
    with open("/proc/self/cgroup") as cgroups:
        for line in cgroups:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                paths[name] = path
    v2 = mounts[""] + paths[""] if "" in mounts and "" in paths else None
    v1 = mounts["cpuset"] + paths["cpuset"] if "cpuset" in mounts and "cpuset" in paths else None
    return v2, v1


def _read(path: str) -> str:
    with open(path) as file:
        return file.read().strip()


def _write(path: str, text: str) -> None:
    with open(path, "w") as file:
        file.write(text)


_PREFIX = "phi1-sandbox-"  # then the evaluator's pid, the CPU and a random part


def remove_stale() -> None:
    """Removes the cpusets of evaluators that were killed before they could (SIGKILL): an empty
    cgroup of a pid that no longer runs."""
    for directory in filter(None, _own_cgroups()):
        try:
            names = [name for name in os.listdir(directory) if name.startswith(_PREFIX)]
        except OSError:
            continue
        for name in names:
            owner = name[len(_PREFIX):].split("-")[0]
            if owner.isdigit() and not os.path.exists(f"/proc/{owner}"):
                try:
                    os.rmdir(os.path.join(directory, name))
                except OSError:  # not empty, or not ours to remove
                    pass


class Cpuset:
    """One worker's cpuset cgroup: `prefix` starts a command inside it, `remove` deletes it once
    the worker's processes are gone."""

    def __init__(self, path: str, version: int) -> None:
        self.path = path
        self.version = version

    @classmethod
    def create(cls, cpu: int) -> Optional["Cpuset"]:
        """A new cpuset cgroup holding only `cpu`, below our own cgroup; None where none can be made."""
        v2, v1 = _own_cgroups()
        name = f"{_PREFIX}{os.getpid()}-{cpu}-{secrets.token_hex(3)}"
        if v2 is not None and os.path.exists(os.path.join(v2, "cgroup.controllers")):
            try:
                if "cpuset" in _read(os.path.join(v2, "cgroup.controllers")).split():
                    if "cpuset" not in _read(os.path.join(v2, "cgroup.subtree_control")).split():
                        _write(os.path.join(v2, "cgroup.subtree_control"), "+cpuset")
                    return cls._make(os.path.join(v2, name), 2, cpu, parent=v2)
            except OSError:
                pass
        if v1 is not None:
            try:
                return cls._make(os.path.join(v1, name), 1, cpu, parent=v1)
            except OSError:
                pass
        return None

    @classmethod
    def _make(cls, path: str, version: int, cpu: int, parent: str) -> "Cpuset":
        os.mkdir(path)
        try:
            if version == 1:  # a v1 cpuset takes no process until it has memory nodes too
                _write(os.path.join(path, "cpuset.mems"), _read(os.path.join(parent, "cpuset.mems")))
            _write(os.path.join(path, "cpuset.cpus"), str(cpu))
        except OSError:
            os.rmdir(path)
            raise
        return cls(path, version)

    def prefix(self) -> list[str]:
        """A command prefix that moves the process into this cgroup before it execs the rest, so
        everything it starts is inside from the start."""
        return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', os.path.join(self.path, "cgroup.procs")]

    def remove(self, deadline: float) -> bool:
        """Deletes the cgroup; retried until `deadline` while its last processes finish exiting."""
        while True:
            try:
                os.rmdir(self.path)
                return True
            except FileNotFoundError:
                return True
            except OSError:  # EBUSY: not empty yet
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.01)
