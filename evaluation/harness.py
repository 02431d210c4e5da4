"""The two roles of a sample's processes (DESIGN.md data flow: "sandbox -> pass@k"; "Sandbox": the
verdict comes from a trusted checker process).

`serve_candidate` runs in the candidate process: it executes the untrusted program (prompt +
completion), then answers calls to the entry point arriving over the call pipe, converting each
return value to plain data (`evaluation.boundary`). `run_checker` runs in the checker process: it
executes the benchmark's trusted test code with the entry point bound to a proxy that calls the
candidate over that pipe, and alone writes the verdict on the result pipe, which the candidate
never holds. So nothing the candidate does inside its own process (walking frames, scanning `gc`,
reading its own memory, writing to every descriptor, exiting early) can produce a pass: what
reaches the tests are plain values and exceptions rebuilt from a type name and a message, and a
pass is written only after the tests returned. What keeps the candidate from reaching the checker
process from outside is the kernel's job, set up by `evaluation.sandbox_server`.

Standard library only: the fork server loads this module once and forks both processes.
"""

from __future__ import annotations

import builtins
import functools
import os
import socket
import sys
from types import CodeType
from typing import Any, NoReturn, Optional

from evaluation.boundary import BoundaryError, describe, read_message, to_plain, write_message

PASS = b"P"
FAIL = b"F"
MAX_RESULT_BYTES = 1000  # of a failure reason, which lands in the results file


class CandidateError(Exception):
    """An exception the candidate raised whose type the checker does not rebuild (not a built-in
    exception); the message names the original type."""


class CandidateFault(Exception):
    """The candidate broke the call protocol (died, answered out of turn, sent something that is
    not plain data); the sample fails whatever the tests do with this exception."""


def serve_candidate(program: str, entry_point: str, calls: int, replies: int) -> NoReturn:
    """Executes `program`, reports whether it defined `entry_point`, then serves calls until the
    checker closes the call pipe."""
    try:
        namespace: dict = {}
        exec(compile(program, "<sample>", "exec"), namespace)
        if entry_point not in namespace:
            raise NameError(f"the program defines no {entry_point!r}")
        function = namespace[entry_point]
    except BaseException as error:  # SystemExit too: the program must not end before its tests
        _flush()
        write_message(replies, ("error", *describe(error)))
        os._exit(1)
    write_message(replies, ("ready",))
    while (request := read_message(calls)) is not None:
        sequence, args, kwargs = request
        try:
            reply = (sequence, "return", to_plain(function(*args, **kwargs)))
        except BoundaryError as error:
            reply = (sequence, "unplain", str(error))
        except BaseException as error:
            reply = (sequence, "raise", *describe(error))
        _flush()  # the output is in the capture pipe before the tests go on
        try:
            write_message(replies, reply)
        except BoundaryError as error:
            write_message(replies, (sequence, "unplain", str(error)))
    _flush()
    os._exit(0)


class _CandidateProxy:
    """The checker's end of the call pipe."""

    def __init__(self, calls: int, replies: int) -> None:
        self.calls, self.replies = calls, replies
        self.sequence = 0
        self.started = False
        self.fault: Optional[str] = None

    def receive(self) -> tuple:
        try:
            message = read_message(self.replies)
        except BoundaryError as error:
            raise self._broken(f"the candidate sent a bad message: {error}") from None
        if message is None:
            raise self._broken("the candidate process exited before answering")
        if type(message) is not tuple or not message:
            raise self._broken("the candidate sent a message that is not a reply")
        return message

    def _broken(self, reason: str) -> CandidateFault:
        self.fault = self.fault or reason
        return CandidateFault(self.fault)

    def start(self) -> None:
        """Waits until the program has run; one that raised (its type and message) fails the sample.
        Called at the first call, so the test code is executed while the candidate runs its program."""
        self.started = True
        message = self.receive()
        if message == ("ready",):
            return
        if len(message) == 3 and message[0] == "error" and all(type(part) is str for part in message[1:]):
            raise self._broken(f"the program raised {message[1]}: {message[2][:MAX_RESULT_BYTES]}")
        raise self._broken("the candidate sent a message that is not a reply")

    def call(self, args: tuple, kwargs: dict) -> Any:
        if not self.started:
            self.start()
        if self.fault:
            raise CandidateFault(self.fault)
        self.sequence += 1
        try:
            write_message(self.calls, (self.sequence, args, kwargs))
        except (ValueError, BoundaryError) as error:  # marshal refuses objects the test passed
            raise TypeError(f"the test's arguments do not cross the sandbox boundary: {error}") from None
        except BrokenPipeError:
            raise self._broken("the candidate process exited before the call") from None
        message = self.receive()
        if message[0] != self.sequence:
            raise self._broken("the candidate answered out of turn")
        if len(message) == 3 and message[1] == "return":
            return message[2]
        if len(message) == 3 and message[1] == "unplain" and type(message[2]) is str:
            raise self._broken(message[2][:MAX_RESULT_BYTES])
        if len(message) == 4 and message[1] == "raise" and type(message[2]) is str and type(message[3]) is str:
            raise _rebuild(message[2], message[3])
        raise self._broken("the candidate sent a message that is not a reply")

    def finish(self) -> None:
        """Raises if the candidate broke the protocol at any point, also where the tests caught
        the exception that said so, or never called the candidate."""
        if not self.started:
            self.start()
        if self.fault:
            raise CandidateFault(self.fault)


def _rebuild(type_name: str, message: str) -> Exception:
    """The candidate's exception as the checker raises it: a built-in exception type by name, so
    tests that expect `ValueError` see one; any other type as CandidateError."""
    kind = getattr(builtins, type_name, None)
    if isinstance(kind, type) and issubclass(kind, Exception):
        try:
            return kind(message)
        except Exception:  # a type with other constructor arguments (UnicodeDecodeError)
            pass
    return CandidateError(f"{type_name}: {message}")


def check(test: str, entry_point: str, calls: int, replies: int) -> bytes:
    """The verdict of the trusted `test` on the candidate behind the call pipe: `PASS`, or `FAIL`
    and the reason."""
    proxy = _CandidateProxy(calls, replies)

    def candidate(*args: Any, **kwargs: Any) -> Any:
        return proxy.call(args, kwargs)

    try:
        tests: dict = {entry_point: candidate}
        exec(_compiled(test), tests)
        if "check" in tests:
            tests[entry_point] = candidate  # a prompt in the test code defined its stub under that name
            tests["check"](candidate)
        proxy.finish()
    except BaseException as error:  # SystemExit in the tests is a failure too
        name, text = describe(error)
        reason = f"{name}: {text}" if name not in ("CandidateError", "CandidateFault") else text
        return FAIL + reason.encode("utf-8", "replace")[:MAX_RESULT_BYTES]
    return PASS


@functools.lru_cache(maxsize=256)
def _compiled(test: str) -> CodeType:
    """Test code is trusted and repeats (n samples per problem), so the checker compiles it once."""
    return compile(test, "<test>", "exec")


def serve_checker(control: socket.socket) -> NoReturn:
    """The checker process's loop: per sample, the server sends the checker's ends of a fresh call
    pipe pair and then `(test, entry_point)`; the verdict goes back on `control`, which only this
    process holds. Exits when the server closes `control`."""
    while True:
        _, fds, _, _ = socket.recv_fds(control, 1, 2)
        job = read_message(control.fileno())
        if job is None or len(fds) != 2:
            os._exit(0)
        calls, replies = fds
        try:
            verdict = check(job[0], job[1], calls, replies)
        finally:
            os.close(calls)
            os.close(replies)
        _flush()
        write_message(control.fileno(), verdict)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # the program may have replaced or closed its streams
            pass
