"""The sandbox pool (DESIGN.md data flow: "sandbox -> pass@k"; "Sandbox"): parallel workers, each a
long-lived `evaluation.sandbox_server` fork server started through the launcher
`evaluation.isolation` picks, that run samples and return verdicts. A sample is a `Job`: the
untrusted program, run in a candidate process, and the trusted test code, run in a checker process
that calls the candidate across a plain-data boundary and alone decides the verdict.

Used by `evaluation.humaneval` for samples and by the data pipeline for synthetic exercises.
Workers die with the evaluator (parent-death signal, bwrap `--die-with-parent`, unshare
`--kill-child`), are killed and replaced when they stop answering, and are all killed when the
pool closes, also on Ctrl-C, so no process outlives a run.

No call here waits without a deadline: a worker must take a job and report that it cleaned up
after its last sample (`READY`) within the server's clean-up time plus `_REPLY_GRACE_S`, and
return the verdict within the job's timeout plus that grace. A
worker that misses a deadline is killed and replaced: the sample it was running fails, and a job
it had not yet taken runs on the fresh worker, so one pathological sample costs only itself.
Each worker runs in a cpuset cgroup of its own CPU where the machine allows
(`evaluation.worker_cpus`), so no sample can take CPU time from another worker's sample.

A job's timeout is wall-clock time, from the moment the server hands the job over to the verdict.
CPU time would not make verdicts independent of the machine: a slower CPU needs more CPU seconds
too (EvalPlus's gap between a laptop and a slow cloud CPU is that), and a sample that sleeps or
waits on a pipe uses none, so a wall-clock limit would be needed beside it anyway. What CPU time
would discount is other load's share of the CPU; inside the evaluator the cpusets already keep
one sample's load off another's CPU, and a per-process CPU-seconds rlimit (timeout + 1 s) backs
the wall clock up. Load from outside the evaluator can still lengthen a sample: on a busy machine
give fewer workers or a longer timeout.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import queue
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable, Iterable, Optional

from evaluation import isolation
from evaluation.boundary import BoundaryError, read_message, write_message
from evaluation.sandbox_server import CLEAN_UP_SECONDS, READY, children, die_with_parent
from evaluation.worker_cpus import Cpuset, remove_stale

_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_REPLY_GRACE_S = 10.0  # beyond the sample timeout or the server's clean-up time, for a loaded machine


@dataclass(frozen=True)
class Limits:
    """Per-sample limits; the CPU-seconds rlimit is derived from the timeout of each job."""

    memory_bytes: int = 1 << 30
    processes: int = 32
    file_bytes: int = 16 << 20
    open_files: int = 256
    output_bytes: int = 64 << 10


@dataclass(frozen=True)
class Job:
    """One sample: `program` is the untrusted code (prompt + completion), `test` the trusted test
    code, run with the name `entry_point` bound to the candidate function; when `test` defines
    `check`, `check(candidate)` is called (HumanEval), otherwise its top-level asserts are the test
    (MBPP)."""

    program: str
    test: str
    entry_point: str
    timeout: float = 3.0  # wall-clock seconds (see the module docstring for why not CPU time)


@dataclass(frozen=True)
class Verdict:
    passed: bool
    result: str  # "passed", "timed out" or "failed: <reason>"
    output: str = ""  # stdout and stderr together, capped at Limits.output_bytes


def _stat(pid: int) -> Optional[tuple[str, str]]:
    """(state, start time) of a process, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):  # reaped before the open, or between open and read
        return None
    return fields[0], fields[19]


def _descendants(root: int) -> list[tuple[int, str]]:
    """(pid, start time) of every descendant of `root`; the start time tells a reused pid apart."""
    found, frontier = [], [root]
    while frontier:
        frontier = [child for pid in frontier for child in children(pid)]
        found += [(pid, stat[1]) for pid in frontier if (stat := _stat(pid))]
    return found


def _gone(pid: int, started: str) -> bool:
    """True once that process has exited (a zombie has: it only waits for its parent to collect it)."""
    stat = _stat(pid)
    return stat is None or stat[1] != started or stat[0] == "Z"


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


class _WorkerLost(Exception):
    """The worker broke before it took the whole job, so the job can run on a fresh one."""


class _Worker:
    """One fork server process and the pipes to it."""

    def __init__(self, launcher: isolation.Launcher, limits: Limits, cpu: int, cpuset: bool) -> None:
        # Two uids of its own per worker (as root), the candidates' and the checker's: RLIMIT_NPROC
        # binds per worker, and neither can signal, trace or read the other, nor the root server.
        self.uid = 1_000_000 + 2 * secrets.randbelow(1 << 29)
        self.checker_uid = self.uid + 1
        # Its processes share one CPU: a call from the checker to the candidate and back then
        # hands the CPU over directly instead of waiting for another one (about 40 us instead of
        # several hundred on a loaded machine).
        self.cpu = cpu
        self.cpuset = Cpuset.create(cpu) if cpuset else None
        settings = {"limits": asdict(limits), "uid": self.uid, "checker_uid": self.checker_uid, "cpu": cpu,
                    "show_hidden_interpreter": launcher.server_mounts, "worker_namespaces": launcher.name != "none",
                    "interpreter_mounts": isolation.interpreter_mounts(),
                    "preload_more": launcher.name == "none" and bool(isolation.interpreter_mounts())}
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": _PACKAGE_ROOT,
               "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}
        command = [*(self.cpuset.prefix() if self.cpuset else ()), *launcher.prefix, sys.executable, "-m",
                   "evaluation.sandbox_server", json.dumps(settings)]
        # The worker dies with the thread that starts it. util-linux `setpriv` arranges that without a
        # preexec_fn, which would make Python fork the whole (possibly JAX-threaded) evaluator.
        if shutil.which("setpriv"):
            command, preexec = ["setpriv", "--pdeathsig", "KILL", "--", *command], None
        else:
            preexec = die_with_parent
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, env=env, cwd="/", start_new_session=True,
                                        preexec_fn=preexec)
        # Only the pool holds these ends: a read or write is tried at once and waits (for its
        # deadline) only when it would block, which saves a poll per message.
        os.set_blocking(self.process.stdin.fileno(), False)
        os.set_blocking(self.process.stdout.fileno(), False)
        self.hello = self._receive(time.monotonic() + 60.0)
        self.ready = self.hello is not None  # the hello says it is ready for its first job
        if self.hello is None:
            self.kill()
            raise RuntimeError(f"sandbox worker failed to start (launcher {launcher.name})")

    def _receive(self, deadline: float) -> Optional[dict]:
        """The server's next message, or None when it died or did not send it all by `deadline`."""
        try:
            return read_message(self.process.stdout.fileno(), deadline)
        except (OSError, ValueError, BoundaryError):  # it stalled or died, or the pool closed the pipe under us
            return None

    def run(self, job: Job) -> Optional[Verdict]:
        """The verdict, or None when the worker died or stalled while it ran the job; raises
        _WorkerLost when it did so before it took the job."""
        # The job goes out at once, while the server may still be cleaning up after the last one
        # (so its next sample starts without a round trip to the pool): the server reads it only
        # after it has reported READY, and a job larger than the pipe waits for that too.
        deadline = time.monotonic() + CLEAN_UP_SECONDS + _REPLY_GRACE_S
        try:
            write_message(self.process.stdin.fileno(), asdict(job), deadline)
        except BoundaryError as error:  # checked before anything is written
            return Verdict(False, f"failed: the job is too large for the sandbox: {error}")
        except (OSError, ValueError):  # it died, stalled, or the pool closed the pipe under us
            raise _WorkerLost from None
        if not self.ready and self._receive(deadline) != READY:
            raise _WorkerLost
        self.ready = False
        reply = self._receive(time.monotonic() + job.timeout + _REPLY_GRACE_S)
        return None if reply is None else Verdict(**reply)

    def kill(self) -> None:
        """SIGTERM first, so the server kills its sample's whole tree itself, then SIGKILL; returns
        once every process of the worker is gone (a pid namespace is torn down asynchronously, but
        its init exits only after everything in it has), or at a deadline."""
        tree = _descendants(self.process.pid)
        for sig, patience in ((signal.SIGTERM, 2.0), (signal.SIGKILL, _REPLY_GRACE_S)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(patience)
                break
            except subprocess.TimeoutExpired:
                continue
        deadline = time.monotonic() + _REPLY_GRACE_S
        while (left := [pid for pid, started in tree if not _gone(pid, started)]) and time.monotonic() < deadline:
            for pid in left:
                _signal(pid, signal.SIGKILL)
            time.sleep(0.01)
        for stream in (self.process.stdin, self.process.stdout):
            stream.close()
        if self.cpuset is not None:
            self.cpuset.remove(deadline)


class SandboxPool:
    """`workers` fork servers (default: one per core) behind `run`; use as a context manager.
    `isolation_level` names what isolates the samples here, e.g. "bwrap+uid+private-tmp+emptied-ipc+cpuset"."""

    def __init__(self, workers: Optional[int] = None, limits: Limits = Limits(), isolation_name: str = "auto",
                 *, quiet: bool = False) -> None:
        self.launcher = isolation.choose(isolation_name)
        if self.launcher.warning and not quiet:
            print(f"warning: {self.launcher.warning}", file=sys.stderr)
        self.limits = limits
        remove_stale()
        probe = Cpuset.create(0)
        self._cpusets = probe is not None and probe.remove(time.monotonic() + _REPLY_GRACE_S)
        if not self._cpusets and not quiet:
            print("warning: sandbox: no cpuset cgroup can be made here, so a sample that widens its CPU affinity "
                  "can slow the samples of other workers until its timeout", file=sys.stderr)
        self.size = workers or os.cpu_count() or 1
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False
        # Workers die with the thread that started them (parent-death signal), so one long-lived
        # thread starts them all, also the replacements needed while `run` threads come and go.
        self._spawner = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sandbox-spawner")
        try:
            cpus = sorted(os.sched_getaffinity(0))
            for index in range(self.size):
                self._idle.put(self._start(cpus[index % len(cpus)]))
        except BaseException:
            self.close()
            raise
        hello = self._all[0].hello
        self.isolation_level = "+".join([self.launcher.name] + [name for name, on in (
            ("uid", hello["uid_drop"]), ("private-tmp", hello["private_temp_dirs"]),
            ("emptied-tmp", hello["emptied_temp_dirs"] and not hello["private_temp_dirs"]),
            ("ipc-namespaces", hello["sample_ipc_namespaces"]), ("emptied-ipc", hello["emptied_ipc"]),
            ("cpuset", self._cpusets)) if on])

    def _start(self, cpu: int) -> _Worker:
        worker = self._spawner.submit(_Worker, self.launcher, self.limits, cpu, self._cpusets).result()
        with self._lock:
            if self._closed:
                worker.kill()
                raise RuntimeError("the sandbox pool is closed")
            self._all.append(worker)
        return worker

    def _replace(self, worker: _Worker) -> _Worker:
        worker.kill()
        with self._lock:
            if self._closed:
                raise RuntimeError("the sandbox pool was closed")
            self._all.remove(worker)
        return self._start(worker.cpu)

    def run_one(self, job: Job) -> Verdict:
        worker = self._idle.get()
        try:
            # A worker lost before it took the job (it stalled cleaning up after the last sample)
            # is replaced and the job runs on the fresh one; a second loss in a row is not the
            # last sample's doing and fails this one.
            for _ in range(2):
                try:
                    verdict = worker.run(job)
                    break
                except _WorkerLost:
                    worker = self._replace(worker)
            else:
                verdict = None
            if verdict is None:
                worker = self._replace(worker)
                verdict = Verdict(False, "failed: the sandbox worker died or stopped answering")
        finally:
            self._idle.put(worker)
        return verdict

    def run(self, jobs: Iterable[Job], *, progress: bool = False, description: str = "sandbox",
            on_verdict: Optional[Callable[[int, Verdict], None]] = None) -> list[Verdict]:
        """Verdicts in the order of `jobs`, computed by all workers in parallel; `on_verdict(index,
        verdict)` hears of each as soon as it is known (so an interrupted run loses none)."""
        jobs = list(jobs)
        verdicts: list[Optional[Verdict]] = [None] * len(jobs)
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=len(jobs), desc=description, unit="sample", file=sys.stderr)
        executor = concurrent.futures.ThreadPoolExecutor(self.size)
        try:
            futures = {executor.submit(self.run_one, job): index for index, job in enumerate(jobs)}
            for future in concurrent.futures.as_completed(futures):
                index = futures[future]
                verdicts[index] = future.result()
                if on_verdict is not None:
                    on_verdict(index, verdicts[index])
                if bar is not None:
                    bar.update()
        finally:
            # On Ctrl-C: drop queued jobs and kill the workers, which ends the ones in flight.
            executor.shutdown(wait=False, cancel_futures=True)
            if bar is not None:
                bar.close()
        return verdicts

    def close(self) -> None:
        with self._lock:
            workers, self._all, self._closed = self._all, [], True
        for worker in workers:
            worker.kill()
        self._spawner.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> "SandboxPool":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
