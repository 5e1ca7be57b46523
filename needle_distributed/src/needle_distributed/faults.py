"""No hangs: a rank that raises aborts every rank, and a collective that waits too long aborts.

A rank killed outright is the launcher's to report (Open MPI's ``mpirun`` ends the job
and names the rank). A rank that raises prints which rank failed and why, then calls
``MPI_Abort``, so the other ranks stop instead of waiting in their next collective. A
rank that is stuck (or exited early) is caught by the watchdog: a collective that does
not complete within ``NEEDLE_DISTRIBUTED_TIMEOUT`` seconds (default 300) aborts the job.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

DEFAULT_TIMEOUT_S = 300.0
_state: dict[str, Any] = {"world": None, "op": None, "since": 0.0, "thread": None}


def timeout_seconds() -> float:
    raw = os.environ.get("NEEDLE_DISTRIBUTED_TIMEOUT", "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        raise ValueError(f"NEEDLE_DISTRIBUTED_TIMEOUT must be a number of seconds, got {raw!r}") from None
    return value if value > 0 else float("inf")


def abort(message: str, code: int = 1) -> None:
    """Print ``message`` (prefixed with this rank) to stderr and end every rank."""
    w = _state["world"]
    prefix = f"needle.distributed: rank {w.rank} of {w.size}" if w is not None else "needle.distributed"
    sys.stderr.write(f"{prefix}: {message}\n")
    sys.stderr.flush()
    if w is not None and w.comm is not None:
        w.comm.Abort(code)
    os._exit(code)


def _excepthook(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
    w = _state["world"]
    traceback.print_exception(kind, exc, tb)
    abort(f"failed with {kind.__name__}: {exc}; aborting all {w.size} ranks")


def _watch() -> None:
    limit = timeout_seconds()
    period = min(1.0, limit / 10)
    while True:
        time.sleep(period)
        op, since = _state["op"], _state["since"]
        if op is not None and time.monotonic() - since > limit:
            abort(f"{op} has waited more than {limit:g} s for the other ranks (NEEDLE_DISTRIBUTED_TIMEOUT): "
                  "another rank is stuck, has exited early or died; aborting all ranks")


def install(world: Any) -> None:
    """Abort every rank on an uncaught exception; start the collective watchdog."""
    _state["world"] = world
    sys.excepthook = _excepthook
    if _state["thread"] is None and timeout_seconds() != float("inf"):
        thread = threading.Thread(target=_watch, name="needle-distributed-watchdog", daemon=True)
        thread.start()
        _state["thread"] = thread


@contextmanager
def guarded(what: str) -> Iterator[None]:
    """Mark a blocking collective, so the watchdog can tell how long it has waited."""
    _state["op"], _state["since"] = what, time.monotonic()
    try:
        yield
    finally:
        _state["op"] = None
