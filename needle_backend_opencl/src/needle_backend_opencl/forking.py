"""What a forked child may do with the parent's OpenCL device: nothing, said at once.

An OpenCL context does not survive ``fork``: the driver's worker threads (PoCL's
pthread device runs every command on them) exist only in the parent, so a child that
enqueues and waits blocks forever, and releasing the parent's objects may take locks
held by threads that are gone. Re-creating the context in the child is not possible
either: the driver's process-wide state (initialised once, in the parent) came along.

So an ``os.register_at_fork`` hook marks every runtime of the parent as disowned in the
child: each entry point raises ``ForkedDeviceError`` naming the ``spawn`` start method,
and the parent's OpenCL objects are never released in the child. The same holds when
the parent only listed devices (``ndl.devices()`` queries the driver, which starts it):
the child cannot open the device either, and ``discovery`` says so. A child that does
not touch the device (a data-loading worker that only reads NumPy arrays) is unaffected.
"""

from __future__ import annotations

import os
import weakref
from typing import Any, NoReturn

_runtimes: weakref.WeakSet[Any] = weakref.WeakSet()
_registered = False
_driver_started = False  # this process (or one it was forked from) queried the OpenCL driver
_inherited = False  # this process was forked after the driver was started
_kept: list[Any] = []  # the parent's objects a child drops: kept so no release runs


class ForkedDeviceError(RuntimeError):
    """The opencl device was initialised in a parent process before this one forked."""


MESSAGE = (
    "opencl: this process was forked (os.fork, or multiprocessing with the 'fork' start "
    "method, the default on Linux) after its parent had started the OpenCL driver (by "
    "using the opencl device or listing devices), and OpenCL cannot cross a fork. Start "
    "worker processes with the 'spawn' start method instead: multiprocessing.get_context('spawn') (or "
    "multiprocessing.set_start_method('spawn') at program start); a spawned worker opens "
    "its own device."
)


def refuse(*_args: Any, **_kwargs: Any) -> NoReturn:
    raise ForkedDeviceError(MESSAGE)


def keep_forever(obj: Any) -> None:
    _kept.append(obj)


def _in_child() -> None:
    global _inherited
    _inherited = _driver_started
    for runtime in list(_runtimes):
        runtime.disown()
        _kept.append(runtime)  # the context, queue and kernels stay unreleased too


def _register() -> None:
    global _registered
    if not _registered:
        os.register_at_fork(after_in_child=_in_child)
        _registered = True


def driver_started() -> None:
    """Called before this process first queries the driver: children forked from now
    on cannot use it."""
    global _driver_started
    _driver_started = True
    _register()


def inherited() -> bool:
    """Whether this process was forked from one that had started the OpenCL driver."""
    return _inherited


def track(runtime: Any) -> None:
    """Disown ``runtime`` in any child forked from now on."""
    driver_started()
    _runtimes.add(runtime)
