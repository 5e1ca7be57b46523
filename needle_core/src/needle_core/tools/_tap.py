"""The interception layer shared by ``check_against`` and ``profile``.

While at least one tool is active, three things are swapped in place and put back
when the last tool leaves, so that with no tool active the op and kernel hot paths
are exactly the code that runs without tools (zero added cost, not even a flag test):

- ``Value.make_from_op`` (every Tensor op, forward and backward, goes through it);
- ``Op.gradient_as_tuple`` and ``autograd.compute_gradient_of_variables``, only to
  label the ops they build as backward ops;
- each enabled device's kernel attributes (the frozen table is plain instance
  attributes, see ``device.py``): a wrapper that reports every call to the tools.

Tools implement ``op_begin(frame)``, ``op_end(frame, result)``, ``kernel_begin(call)``
and ``kernel_end(call)`` (a tool with ``begin_noop = True`` only the two ``*_end``). Work a tool does for itself
(copies, reference runs) happens inside ``TAP.quiet()`` and is not reported.
Single-threaded: tools observe the thread that runs the ops.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from .. import autograd
from ..kernels import ALL_KERNELS
from ..registry.state import STATE

_now = time.perf_counter_ns

#: Kernels that allocate rather than compute: never wrapped.
_UNWRAPPED = frozenset({"Array"})


class OpFrame:
    """One Tensor op in progress: what ran, on what, and when (plain slots: one per op)."""

    __slots__ = ("op", "inputs", "phase", "seq", "t0", "t1", "kernels", "notes")

    def __init__(self, op: Any, inputs: tuple[Any, ...], phase: str, seq: int) -> None:
        self.op, self.inputs, self.seq = op, inputs, seq
        self.phase = phase  # "forward", "backward of <Op>" or "backward" (adjoint sums)
        self.t0 = self.t1 = 0
        self.kernels: list[KernelCall] = []
        self.notes: dict[Any, Any] = {}  # per-tool scratch space

    @property
    def name(self) -> str:
        return type(self.op).__name__


class KernelCall:
    """One kernel call: where it ran, for which op, and when (plain slots: one per call)."""

    __slots__ = ("device", "name", "provider", "args", "frame", "t0", "t1", "notes")

    def __init__(self, device: Any, name: str, provider: str, args: tuple[Any, ...], frame: OpFrame | None) -> None:
        self.device, self.name, self.provider, self.args = device, name, provider, args
        self.frame = frame  # the op it runs for; None for NDArray code outside ops (optimisers)
        self.t0 = self.t1 = 0
        self.notes: dict[Any, Any] = {}


class Tap:
    def __init__(self) -> None:
        self.tools: list[Any] = []
        self.frames: list[OpFrame] = []
        self.context: list[str] = []  # backward labels
        self.silent = 0
        self.seq = 0
        self.sync = False  # synchronise async devices after each kernel (profiling)
        self.originals: dict[tuple[int, str], Any] = {}  # (id(device), name) -> kernel
        self.wrapped: dict[int, Any] = {}  # id(device) -> device
        self._refresh()
        self._saved: tuple[Any, ...] | None = None

    # -- tools come and go ------------------------------------------------------------
    def add(self, tool: Any) -> None:
        if not self.tools:
            self._install()
        self.tools.append(tool)
        self._refresh()
        for dev in list(STATE.devices.values()):
            self.watch(dev)

    def remove(self, tool: Any) -> None:
        if tool in self.tools:
            self.tools.remove(tool)
        self._refresh()
        if not self.tools:
            self._uninstall()

    def _refresh(self) -> None:
        # the callbacks as tuples, built once per tool change (not per call); a tool whose
        # *_begin is a no-op marks it ``begin_noop = True`` to be skipped entirely
        tools = tuple(self.tools)
        active = tuple(t for t in tools if not getattr(t, "begin_noop", False))
        self._op_begin = tuple(t.op_begin for t in active)
        self._op_end = tuple(t.op_end for t in tools)
        self._kernel_begin = tuple(t.kernel_begin for t in active)
        self._kernel_end = tuple(t.kernel_end for t in tools)
        self.sync = any(getattr(t, "synchronise", False) for t in tools)

    @contextlib.contextmanager
    def quiet(self) -> Iterator[None]:
        """Tool work: ops and kernels run unobserved."""
        self.silent += 1
        try:
            yield
        finally:
            self.silent -= 1

    def original(self, device: Any, name: str) -> Any:
        """The real kernel behind a wrapper (tools call it to copy without being seen)."""
        return self.originals.get((id(device), name), getattr(device, name, None))

    # -- patching -------------------------------------------------------------------------
    def _install(self) -> None:
        value, op = autograd.Value, autograd.Op
        self._saved = (value.__dict__["make_from_op"], op.__dict__["gradient_as_tuple"],
                       autograd.compute_gradient_of_variables)
        make, gradient, backward = self._saved
        inner_make = make.__func__

        def make_from_op(cls: type, op_: Any, inputs: Any) -> Any:
            if self.silent or not self.tools:
                return inner_make(cls, op_, inputs)
            return self._run_op(inner_make, cls, op_, inputs)

        def gradient_as_tuple(op_: Any, out_grad: Any, node: Any) -> Any:
            self.context.append(f"backward of {type(op_).__name__}")
            try:
                return gradient(op_, out_grad, node)
            finally:
                self.context.pop()

        def compute_gradient_of_variables(output_tensor: Any, out_grad: Any) -> None:
            self.context.append("backward")
            try:
                backward(output_tensor, out_grad)
            finally:
                self.context.pop()

        value.make_from_op = classmethod(make_from_op)
        op.gradient_as_tuple = gradient_as_tuple
        autograd.compute_gradient_of_variables = compute_gradient_of_variables

    def _uninstall(self) -> None:
        if self._saved is not None:
            make, gradient, backward = self._saved
            autograd.Value.make_from_op = make
            autograd.Op.gradient_as_tuple = gradient
            autograd.compute_gradient_of_variables = backward
            self._saved = None
        for dev in self.wrapped.values():
            for name in ALL_KERNELS:
                fn = self.originals.get((id(dev), name))
                current = dev.__dict__.get(name)
                if fn is not None and getattr(current, "__needle_tap__", False):
                    dev.__dict__[name] = fn  # a table rebuilt meanwhile keeps its new kernel
        self.wrapped.clear()
        self.originals.clear()
        self.frames.clear()
        self.context.clear()

    def watch(self, device: Any) -> None:
        """Wrap ``device``'s kernels (once) so their calls are reported."""
        if id(device) in self.wrapped or not getattr(device, "_enabled", False):
            return
        self.wrapped[id(device)] = device
        for name in ALL_KERNELS:
            fn = device.__dict__.get(name)
            if fn is None or name in _UNWRAPPED or getattr(fn, "__needle_tap__", False):
                continue
            self.originals[(id(device), name)] = fn
            device.__dict__[name] = self._wrap(device, name, fn)

    def _wrap(self, device: Any, name: str, fn: Any) -> Any:
        provider = device.kernel_source(name) or "?"

        def kernel(*args: Any) -> Any:
            if self.silent or not self.tools:
                return fn(*args)
            return self._run_kernel(device, name, provider, fn, args)

        kernel.__needle_tap__ = True  # type: ignore[attr-defined]
        kernel.__name__ = name
        return kernel

    # -- observed calls ---------------------------------------------------------------
    def _run_op(self, make: Any, cls: type, op: Any, inputs: Any) -> Any:
        for x in inputs:
            data = x.cached_data
            if type(data) is tuple:  # a TensorTuple's arrays share one device
                data = data[0] if data else None
            if data is not None and id(data.device) not in self.wrapped:
                self.watch(data.device)
        self.seq += 1
        phase = self.context[-1] if self.context else "forward"
        frame = OpFrame(op, tuple(inputs), phase, self.seq)
        ends = self._op_end
        for begin in self._op_begin:
            begin(frame)
        self.frames.append(frame)
        frame.t0 = _now()
        try:
            result = make(cls, op, inputs)
        finally:
            frame.t1 = _now()
            self.frames.pop()
        for end in ends:
            end(frame, result)
        return result

    def _run_kernel(self, device: Any, name: str, provider: str, fn: Any, args: tuple[Any, ...]) -> Any:
        frames = self.frames
        frame = frames[-1] if frames else None
        call = KernelCall(device, name, provider, args, frame)
        ends = self._kernel_end
        for begin in self._kernel_begin:
            begin(call)
        call.t0 = _now()
        result = fn(*args)
        if self.sync:
            sync = device.__dict__.get("synchronize")
            if sync is not None:
                sync()
        call.t1 = _now()
        if frame is not None:
            frame.kernels.append(call)
        for end in ends:
            end(call)
        call.frame, call.args = None, ()  # no frame <-> call cycle keeping the op's inputs (a graph) alive
        return result


TAP = Tap()
