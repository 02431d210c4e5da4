"""Samples that try to forge a pass: each returns a wrong answer (`f(1)` should be 2) and attacks
the verdict instead, from inside its own process (frames, gc, its own memory, every descriptor,
early exits, rebinding builtins, objects that lie about equality, the call pipe) or from outside
(other processes' memory and descriptors, signals, host files). Every one must fail with a
reason, leave no process behind and leave the pool working. The attacks are generic: they look
for whatever the interpreter or the machine exposes, never for a name in our code."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from evaluation.harness import MAX_RESULT_BYTES
from evaluation.isolation import python_view
from evaluation.sandbox import Job
from sandbox_testlib import TIMEOUT, assert_no_sample_processes, pool, run, sample  # noqa: F401 (pool is a fixture)

# Writes a pass marker, alone and followed by every bytes value in reach, to every descriptor in
# reach, then exits successfully: what a forger does once it has found anything secret-looking.
FORGE = """\
import os, sys

def forge(scopes):
    secrets = [b""]
    descriptors = set(range(1024))
    for scope in scopes:
        for value in list(scope.values()):
            if isinstance(value, (bytes, bytearray)) and len(value) <= 64:
                secrets.append(bytes(value))
    for fd in descriptors:
        for secret in secrets:
            for marker in (b"P", b"PASS", b"passed"):
                try:
                    os.write(fd, marker + secret)
                except OSError:
                    break
    os._exit(0)
"""

TWO_CALLS = "\ndef check(candidate):\n    assert candidate(1) == 2\n    assert candidate(2) == 3\n"


def forger(body: str) -> Job:
    return sample(body, FORGE)


IN_PROCESS_FORGERS = {
    "sys._getframe": forger("""\
        frame, scopes = sys._getframe(), []
        while frame is not None:
            scopes += [frame.f_locals, frame.f_globals]
            frame = frame.f_back
        forge(scopes)
        """),
    "f_back-from-a-nested-function": forger("""\
        def inner():
            return sys._getframe(1)
        frame, scopes = inner(), []
        while frame is not None:
            scopes.append(frame.f_locals)
            frame = frame.f_back
        forge(scopes)
        """),
    "inspect.stack": forger("""\
        import inspect
        forge([scope for info in inspect.stack() for scope in (info.frame.f_locals, info.frame.f_globals)])
        """),
    "traceback-frames": forger("""\
        try:
            raise RuntimeError
        except RuntimeError as error:
            frame, scopes = error.__traceback__.tb_frame, []
        while frame is not None:
            scopes += [frame.f_locals, frame.f_globals]
            frame = frame.f_back
        forge(scopes)
        """),
    "gc-scan": forger("""\
        import gc
        forge([o for o in gc.get_objects() if isinstance(o, dict)])
        """),
    "proc-self-mem": forger("""\
        found = {}
        with open('/proc/self/maps') as maps, open('/proc/self/mem', 'rb', 0) as mem:
            for line in maps:
                start, end = (int(a, 16) for a in line.split()[0].split('-'))
                if 'rw' in line.split()[1] and end - start < (1 << 22):
                    try:
                        mem.seek(start)
                        chunk = mem.read(end - start)
                    except OSError:
                        continue
                    for at in range(0, min(len(chunk), 1 << 16), 4096):
                        found[at] = chunk[at:at + 16]
        forge([found])
        """),
    "ctypes-memory-read": forger("""\
        import ctypes
        found = {i: ctypes.string_at(id(o), 16) for i, o in enumerate(sys._getframe().f_back.f_locals.values())}
        forge([found])
        """),
    "pass-marker-on-fds-0-to-1023": forger("forge([])"),
    "module-level-forge": Job(FORGE + "forge([globals()])\ndef f(x):\n    return x\n",
                              "\ndef check(candidate):\n    assert candidate(1) == 2\n", "f", TIMEOUT),
    "os._exit-before-the-tests": Job("import os\nos._exit(0)\ndef f(x):\n    return x + 1\n",
                                     "\ndef check(candidate):\n    assert candidate(1) == 2\n", "f", TIMEOUT),
    "sys.exit-before-the-tests": Job("import sys\nsys.exit(0)\ndef f(x):\n    return x + 1\n",
                                     "\ndef check(candidate):\n    assert candidate(1) == 2\n", "f", TIMEOUT),
    "os._exit-during-the-tests": sample("import os\nos._exit(0)"),
    "sys.exit-during-the-tests": sample("import sys\nsys.exit(0)"),
    "atexit-after-the-tests": sample("import atexit, os\natexit.register(os._exit, 0)\nreturn x"),
    "exit()-builtin": sample("exit()"),
    "print-a-pass-then-exit": sample("print('passed', flush=True)\nimport os\nos._exit(0)"),
    "rebinding-builtins": sample("""\
        import builtins
        builtins.AssertionError = type('Quiet', (BaseException,), {})
        builtins.isinstance = lambda *args: True
        builtins.type = lambda *args: int
        builtins.__dict__['print'] = None
        return x
        """),
}


@pytest.mark.parametrize("name", list(IN_PROCESS_FORGERS))
def test_forgery_from_inside_the_candidate_fails(pool, name):
    verdict, = run(pool, IN_PROCESS_FORGERS[name])
    assert not verdict.passed, verdict
    assert verdict.result.startswith("failed: ") and len(verdict.result) > len("failed: "), verdict


LIARS = {
    "always-equal-object": ("class Yes:\n    def __eq__(self, other):\n        return True\n", "return Yes()"),
    "always-equal-inside-a-list": ("class Yes:\n    def __eq__(self, other):\n        return True\n", "return [Yes()]"),
    "int-subclass-eq": ("class Two(int):\n    def __eq__(self, other):\n        return True\n", "return Two(7)"),
    "str-subclass-eq-hash": ("class S(str):\n    def __eq__(self, other):\n        return True\n"
                             "    def __hash__(self):\n        return hash('')\n", "return S('no')"),
    "list-subclass-eq": ("class L(list):\n    def __eq__(self, other):\n        return True\n", "return L()"),
    "eq-returns-truthy-object": ("class T:\n    def __bool__(self):\n        return True\n"
                                 "class Yes:\n    def __eq__(self, other):\n        return T()\n", "return Yes()"),
    "always-equal-inside-a-dict": ("class Yes(str):\n    def __eq__(self, other):\n        return True\n",
                                   "return {'k': Yes()}"),
    "generator": ("", "return (x + 1 for _ in range(1))"),
    "map-object": ("", "return map(int, [x + 1])"),
    "lazy-proxy": ("class Lazy:\n    def __getattr__(self, name):\n        return getattr(2, name)\n", "return Lazy()"),
}


@pytest.mark.parametrize("name", list(LIARS))
def test_objects_that_lie_do_not_cross_the_boundary(pool, name):
    verdict, = run(pool, sample(LIARS[name][1], LIARS[name][0]))
    assert not verdict.passed
    assert "is not plain built-in data" in verdict.result, verdict


# Finds its end of any pipe it holds (other than stdout/stderr) by what the descriptor is.
PIPES = "import os, stat\npipes = [fd for fd in range(3, 1024) if _is_pipe(fd)]\n"
IS_PIPE = ("import os, stat\ndef _is_pipe(fd):\n    try:\n        return stat.S_ISFIFO(os.fstat(fd).st_mode)\n"
           "    except OSError:\n        return False\n")


def test_call_pipe_attacks_fail(pool):
    flood_garbage = sample(PIPES + "while True:\n    for fd in pipes:\n        try:\n"
                           "            os.write(fd, b'P' * 65536)\n        except OSError:\n            pass",
                           IS_PIPE)
    huge_header = sample(PIPES + "for fd in pipes:\n    try:\n        os.write(fd, b'\\xff\\xff\\xff\\xff')\n"
                         "    except OSError:\n        pass\nreturn x", IS_PIPE)
    # Both the sample and a forked copy answer the first call: the second answer comes out of turn.
    answer_twice = Job("import os\ndef f(x):\n    if x == 1:\n        os.fork()\n    return x + 1 if x == 1 else x\n",
                       TWO_CALLS, "f", TIMEOUT)
    verdicts = run(pool, flood_garbage, huge_header, answer_twice)
    assert not any(v.passed for v in verdicts), verdicts
    assert all(v.result.startswith("failed: ") for v in verdicts), verdicts
    assert_no_sample_processes(pool)


def test_a_dead_candidate_fails_even_where_the_tests_swallow_errors(pool):
    swallowing = "\ndef check(candidate):\n    try:\n        candidate(1)\n    except BaseException:\n        pass\n"
    verdict, = run(pool, Job("import os\ndef f(x):\n    os._exit(0)\n", swallowing, "f", TIMEOUT))
    assert not verdict.passed and "exited before answering" in verdict.result, verdict


def test_reaching_other_processes_fails(pool):
    """Memory, descriptors, ptrace and signals of every process the candidate can name: none is
    reachable, the sample fails, and the pool goes on passing honest samples."""
    reach = sample("""\
        import ctypes, os, signal
        libc = ctypes.CDLL(None, use_errno=True)
        me, reached = os.getpid(), []
        pids = {os.getppid(), 1, *(int(p) for p in os.listdir('/proc') if p.isdigit())} - {me}
        for pid in pids:
            for path, mode in ((f'/proc/{pid}/mem', 'rb'), (f'/proc/{pid}/environ', 'rb')):
                try:
                    with open(path, mode) as f:
                        f.read(1)
                    reached.append(path)
                except OSError:
                    pass
            try:
                for name in os.listdir(f'/proc/{pid}/fd'):
                    try:
                        with open(f'/proc/{pid}/fd/{name}', 'wb', 0) as f:
                            f.write(b'P')
                        reached.append(f'/proc/{pid}/fd/{name}')
                    except OSError:
                        pass
            except OSError:
                pass
            local = ctypes.create_string_buffer(16)
            iov = (ctypes.c_void_p * 2)(ctypes.addressof(local), 16)
            remote = (ctypes.c_void_p * 2)(0x400000, 16)
            if libc.process_vm_readv(pid, iov, 1, remote, 1, 0) >= 0 or ctypes.get_errno() not in (1, 3):
                reached.append(f'process_vm_readv {pid}')
            if libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH
                reached.append(f'ptrace {pid}')
            try:
                os.kill(pid, signal.SIGSTOP)
                reached.append(f'signal {pid}')
            except OSError:
                pass
        print('reached', sorted(reached), flush=True)
        for target in (os.getppid(), -1):
            try:
                os.kill(target, signal.SIGKILL)
            except OSError:
                pass
        return x
        """)
    # Under no launcher every process of the machine is in reach: more time to try them all.
    attacker, honest_one, honest_two = run(pool, dataclasses.replace(reach, timeout=20.0), sample("return x + 1"),
                                           sample("return x + 1"))
    assert not attacker.passed
    assert "reached []" in attacker.output, attacker.output
    assert honest_one.passed and honest_two.passed
    assert_no_sample_processes(pool)


def test_host_files_outside_the_python_installation_are_not_there(pool):
    if pool.launcher.name != "bwrap":
        pytest.skip("only the bubblewrap layout hides the host's files (documented)")
    here = os.path.abspath(__file__)
    directories = ["/", "/home", "/root", "/work", "/srv", "/opt", "/mnt", "/etc", os.path.dirname(here)]
    look = sample(f"""\
        import json, os
        files = []
        for path in ('/etc/passwd', '/etc/hostname', '/root/.bashrc', {here!r}, '/proc/1/environ'):
            try:
                with open(path, 'rb') as f:
                    files.append([path, f.read(40).decode('latin-1')])
            except OSError:
                pass
        listings = {{}}
        for directory in {directories!r}:
            try:
                listings[directory] = sorted(os.listdir(directory))
            except OSError:
                pass
        print(json.dumps([files, listings]), flush=True)
        raise ValueError(repr(files))
        """)
    verdict, = run(pool, look)
    assert not verdict.passed
    files, listings = json.loads(verdict.output)
    assert files == []
    # Directories exist only on the way to the Python installation and the evaluation package.
    shown = [*python_view(), "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc/ld.so.cache",
             "/dev", "/proc", "/tmp", "/var/tmp"]
    for directory, names in listings.items():
        prefix = directory.rstrip(os.sep) + os.sep
        on_the_way = {path[len(prefix):].split(os.sep)[0] for path in shown if path.startswith(prefix)}
        assert set(names) <= on_the_way, (directory, names)


def test_what_a_sample_says_is_capped(pool):
    verdict, = run(pool, sample("raise ValueError('secret ' * 100000)"))
    assert not verdict.passed and verdict.result.startswith("failed: ValueError: secret")
    assert len(verdict.result.encode()) <= len("failed: ") + MAX_RESULT_BYTES


def test_the_candidate_holds_only_stdio_and_its_call_pipes(pool):
    """No descriptor of the checker, the server or the pool is inherited: besides stdin (/dev/null)
    and the output pipe, the candidate has its read end of the calls and write end of the replies."""
    look = sample("""\
        import os, stat
        kinds = {}
        for name in os.listdir('/proc/self/fd'):
            try:
                mode = os.fstat(int(name)).st_mode
            except OSError:  # the descriptor of the listing itself, closed by now
                continue
            kinds[int(name)] = 'pipe' if stat.S_ISFIFO(mode) else 'char' if stat.S_ISCHR(mode) else 'other'
        print(sorted(kinds.items()), flush=True)
        return x
        """)
    verdict, = run(pool, look)
    assert verdict.output.strip() == "[(0, 'char'), (1, 'pipe'), (2, 'pipe'), (3, 'pipe'), (4, 'pipe')]", verdict
