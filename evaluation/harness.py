"""The test harness that runs inside one sandboxed sample process (DESIGN.md data flow: "sandbox ->
pass@k"): it executes `prompt + completion + test`, calls `check(candidate)`, and reports the
verdict to the fork server over a private result pipe.

A pass is reported only as `b"P" + nonce`, written by this harness after `check` returned; the
nonce is fresh per sample and never printed or stored in the sample's namespace, so an early
`sys.exit(0)`, `os._exit(0)`, an `atexit` hook or a printed marker cannot produce one. Code in the
same process that deliberately walks the interpreter's frames could still find the nonce; that
is the limit of any in-process check and is why everything else (uid, rlimits, namespaces) is
enforced by the kernel outside this module.

Every value the candidate function returns must be plain built-in data (exact types, checked
recursively), so an object whose `__eq__` always returns True fails instead of passing the tests.

Only the standard library is imported here: the fork server loads this module once and forks.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, NoReturn

PASS = b"P"
FAIL = b"F"
MAX_MESSAGE_BYTES = 2000

_PLAIN_SCALARS = frozenset({int, float, complex, bool, str, bytes, type(None)})
_PLAIN_CONTAINERS = frozenset({list, tuple, set, frozenset, dict})


class NotPlainData(TypeError):
    """The candidate returned something other than plain built-in data."""


def check_plain(value: Any, *, _type: Callable = type, _id: Callable = id) -> None:
    """Raises NotPlainData unless `value` is built from exact built-in scalar and container types.

    `type` and `id` are bound at definition time so a sample that rebinds the builtins cannot
    switch the check off; the walk is iterative so deep nesting cannot exhaust the stack."""
    pending = [value]
    seen = set()
    while pending:
        item = pending.pop()
        kind = _type(item)
        if kind in _PLAIN_SCALARS:
            continue
        if kind not in _PLAIN_CONTAINERS:
            raise NotPlainData(f"candidate returned a {kind.__qualname__!s}, not plain built-in data")
        if _id(item) in seen:
            continue
        seen.add(_id(item))
        if kind is dict:
            pending.extend(item.keys())
            pending.extend(item.values())
        else:
            pending.extend(item)


def guarded(function: Callable) -> Callable:
    """`function` with every return value checked by `check_plain` before the tests see it."""
    def candidate(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        check_plain(result)
        return result
    return candidate


def _describe(error: BaseException) -> str:
    try:
        return f"{type(error).__name__}: {error}"
    except BaseException:  # a hostile __str__ must not hide the failure
        return type(error).__name__


def run_sample(program: str, test: str, entry_point: str, result_fd: int, nonce: bytes, *,
               _write: Callable = os.write, _exit: Callable = os._exit) -> NoReturn:
    """Executes the program and `check(entry_point)`, reports through `result_fd`, and exits the
    process without running `atexit` hooks or `finally` blocks the sample left behind."""
    try:
        namespace: dict = {}
        exec(compile(program, "<sample>", "exec"), namespace)
        candidate = guarded(namespace[entry_point])
        tests = {entry_point: candidate}
        exec(compile(test, "<test>", "exec"), tests)
        if "check" in tests:
            tests[entry_point] = candidate  # the prompt in the test code defined it too
            tests["check"](candidate)
    except BaseException as error:  # SystemExit and KeyboardInterrupt are failures too
        _flush()
        _write(result_fd, FAIL + _describe(error).encode("utf-8", "replace")[:MAX_MESSAGE_BYTES])
        _exit(1)
    _flush()  # a sample that sabotages its own streams can only make itself time out
    _write(result_fd, PASS + nonce)
    _exit(0)


def _flush() -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # the sample may have replaced the streams; its output is optional
        pass
