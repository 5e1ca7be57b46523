"""Run a single-host MPI job that cannot touch a network interface other than loopback.

Open MPI's launcher opens its control channel on a non-loopback interface whenever
the host has one (it ignores loopback then, whatever ``*_if_include`` says). A test or
benchmark on one host has no reason to use the network, so ``command(cmd)`` wraps
``cmd`` to run in a fresh network namespace (``unshare --net``, which needs root or
CAP_SYS_ADMIN) whose only interface is loopback, brought up here. Where a namespace
cannot be made, the command runs as is. ``python -m needle_distributed.loopback CMD``
does the same from a shell.
"""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import socket
import struct
import subprocess
import sys

_INSIDE = "--inside-namespace"
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1


@functools.cache
def available() -> bool:
    """Whether this process may create a network namespace (tried once)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    try:
        return subprocess.run([unshare, "--net", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def command(cmd: list[str]) -> list[str]:
    """``cmd`` to run in a loopback-only network namespace, or ``cmd`` itself if none can be made."""
    if not available():
        return list(cmd)
    return ["unshare", "--net", sys.executable, "-m", __name__, _INSIDE, *cmd]


def _bring_up_loopback() -> None:
    with socket.socket() as s:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | _IFF_UP))


def main(argv: list[str]) -> int:
    if argv[:1] == [_INSIDE]:
        _bring_up_loopback()
        argv = argv[1:]
    elif argv and available():
        os.execvp("unshare", command(argv))
    if not argv:
        print("usage: python -m needle_distributed.loopback COMMAND [ARGS...]", file=sys.stderr)
        return 2
    os.execvp(argv[0], argv)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
