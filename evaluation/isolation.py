"""How a sandbox worker is walled off from the machine (DESIGN.md data flow: "sandbox -> pass@k"):
picks the launcher that wraps each `evaluation.sandbox_server` process.

In order of preference: bubblewrap (`bwrap`: a root that holds only the system directories, the
Python installation and this package, read-only; private /tmp and /dev/shm, fresh /proc, every
namespace unshared, dies with its parent), then util-linux `unshare` (new pid, mount,
network, IPC and UTS namespaces, private tmpfs mounts, as root or through a user namespace), then
nothing but rlimits, the server's uid change and (as root) its private temporary directories,
announced by a one-line warning that says what is not isolated. Each candidate is probed once by
actually running it.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass

CHOICES = ("auto", "bwrap", "unshare", "none")
# World-writable directories every sandbox covers with a fresh tmpfs.
PRIVATE_DIRS = ("/tmp", "/var/tmp", "/dev/shm")
# Programs and shared libraries, shown read-only inside bubblewrap (symlinks stay symlinks).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


@dataclass(frozen=True)
class Launcher:
    """A command prefix for the worker process and what it isolates."""

    name: str
    prefix: tuple[str, ...]
    server_mounts: bool  # the server shows the interpreter again where the host hides it from samples
    warning: str  # empty when network, filesystem and processes are all isolated


def interpreter_mounts() -> tuple[tuple[str, str], ...]:
    """(hidden directory, directory inside it to show again) for every directory of this Python
    (its prefixes, sys.path and this checkout) that sits below a directory other users cannot
    enter, such as a pyenv interpreter in a 0700 /root, or below one of `PRIVATE_DIRS`, such as a
    checkout in /tmp. A sample runs as an unprivileged uid and must still import the standard
    library; in its own mount namespace the hidden directory becomes an empty tmpfs with only the
    interpreter's directory bound back, read-only, so nothing else there shows."""
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    needed = {sys.base_prefix, sys.prefix, sys.exec_prefix, checkout, *(p for p in sys.path if os.path.isdir(p))}
    mounts = set()
    for directory in needed:
        parts = os.path.realpath(directory).split(os.sep)[1:]
        for depth in range(1, len(parts)):
            ancestor = os.sep + os.path.join(*parts[:depth])
            if ancestor in PRIVATE_DIRS or not os.stat(ancestor).st_mode & 0o001:
                mounts.add((ancestor, os.path.join(ancestor, parts[depth])))
                break
    return tuple(sorted(mounts))


def python_view() -> tuple[str, ...]:
    """The host directories a bubblewrap sandbox shows, read-only: the Python installation (its
    prefixes and the package directories on sys.path), the `evaluation` package of this checkout
    and nothing else of it; the system directories come on top (see `_bwrap_prefix`)."""
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    packages = [p for p in sys.path if os.path.basename(p) in ("site-packages", "dist-packages") and os.path.isdir(p)]
    wanted = sorted({os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, sys.exec_prefix, *packages)}
                    | {os.path.join(os.path.realpath(checkout), "evaluation")})
    shown: list[str] = []
    for directory in wanted:
        covered = any(directory == s or directory.startswith(s + os.sep) for s in (*shown, *SYSTEM_DIRS))
        if not covered:
            shown.append(directory)
    return tuple(shown)


def _bwrap_prefix() -> tuple[str, ...]:
    namespaces = ("--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try")
    if os.geteuid() == 0:
        # As root no user namespace is needed; keep the capabilities the server uses to change a
        # sample's uid and kill its orphans (bwrap drops them otherwise).
        privileges = ("--cap-add", "ALL")
    else:
        privileges = ("--unshare-user",)
    # The root is an empty tmpfs: the system directories (programs and the libraries Python
    # loads), the loader's cache and the Python installation are bound read-only, so host files
    # elsewhere (home and project directories, /etc, /var) do not exist inside.
    system = []
    for directory in SYSTEM_DIRS:
        if os.path.islink(directory):
            system += ["--symlink", os.readlink(directory), directory]
        elif os.path.isdir(directory):
            system += ["--ro-bind", directory, directory]
    # Directories on the way to them are created world-enterable (bwrap makes them 0700 as root).
    ancestors = sorted({os.sep.join(d.split(os.sep)[:depth])
                        for d in python_view() for depth in range(2, d.count(os.sep) + 1)})
    python = [arg for directory in ancestors for arg in ("--perms", "0755", "--dir", directory)]
    python += [arg for directory in python_view() for arg in ("--ro-bind", directory, directory)]
    # The Python binds come last, so a checkout under /tmp shows through the fresh tmpfs there.
    return ("bwrap", *system, "--perms", "0755", "--dir", "/etc", "--perms", "0755", "--dir", "/var",
            "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache", "--dev", "/dev",
            "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/var/tmp", "--tmpfs", "/dev/shm", *python,
            *namespaces, *privileges, "--die-with-parent", "--new-session", "--")


def _unshare_prefix() -> tuple[str, ...]:
    user = () if os.geteuid() == 0 else ("--map-root-user",)
    return ("unshare", *user, "--pid", "--fork", "--kill-child", "--mount-proc", "--mount", "--net", "--ipc",
            "--uts", "--propagation", "private", "--")


def _works(prefix: tuple[str, ...]) -> bool:
    if shutil.which(prefix[0]) is None:
        return False
    try:
        probe = subprocess.run([*prefix, sys.executable, "-c", "pass"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


@functools.lru_cache(maxsize=None)
def choose(preference: str = "auto") -> Launcher:
    """The best launcher that works here (or the one named, failing loudly when it does not)."""
    if preference not in CHOICES:
        raise ValueError(f"isolation must be one of {CHOICES}, got {preference!r}")
    who = "an unprivileged uid of their own" if os.geteuid() == 0 else "your uid"
    root_note = "" if os.geteuid() == 0 else "sandbox: not root, so samples run as your uid"
    candidates = {
        "bwrap": lambda: Launcher("bwrap", _bwrap_prefix(), False, root_note),
        "unshare": lambda: Launcher("unshare", _unshare_prefix(), True, root_note),
        "none": lambda: Launcher("none", (), False, "sandbox: no bwrap or unshare isolation, so network and "
                                 "other processes are NOT isolated, nor /tmp or SysV IPC without root "
                                 f"(rlimits only; samples run as {who})"),
    }
    names = ("bwrap", "unshare", "none") if preference == "auto" else (preference,)
    for name in names:
        launcher = candidates[name]()
        if name == "none" or _works(launcher.prefix):
            return launcher
    raise RuntimeError(f"isolation {preference!r} was requested but does not work on this machine")
