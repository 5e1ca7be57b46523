"""``check_against``: run every op on the current device and again on a reference device.

Each Tensor op (forward and backward) that runs on a device other than the reference
is re-run on the reference from copies of the same inputs (taken before the op ran);
kernels called outside any op (optimizer updates, ``NDArray`` arithmetic) are re-run
kernel by kernel from copies of their buffers. The first result that differs beyond
the tolerance (rules in ``compare.py``) raises ``DivergenceError``, after writing a
reproducer (saved inputs + a script) to ``report_dir``.
"""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..backend_ndarray import NDArray
from . import reproducer
from ._tap import TAP, KernelCall, OpFrame
from .compare import Mismatch, compare

#: Transfers are how the checker copies values; comparing them with themselves says nothing.
_NOT_RECHECKED = frozenset({"Array", "to_numpy", "from_numpy"})
_HERE = str(Path(__file__).resolve().parents[1])  # needle_core: frames inside it are not "the caller"


class DivergenceError(AssertionError):
    """An op (or kernel) gave results on its device that differ from the reference device's.

    Attributes: ``op`` (op class name, or ``None`` for a kernel outside ops), ``phase``
    (``"forward"``, ``"backward of <Op>"``, ``"outside ops"``), ``kernels`` (``(device,
    kernel, provider)`` triples that ran), ``mismatch`` (a ``compare.Mismatch``) and
    ``reproducer`` (path of the script).
    """

    def __init__(self, message: str, *, op: str | None, phase: str, kernels: list[tuple[str, str, str]],
                 mismatch: Mismatch, reproducer: Path | None) -> None:
        super().__init__(message)
        self.op, self.phase, self.kernels = op, phase, kernels
        self.mismatch, self.reproducer = mismatch, reproducer


class Checker:
    synchronise = False

    def __init__(self, reference: str, rtol: float, atol: float, report_dir: str | os.PathLike | None) -> None:
        from ..registry import device as lookup

        self.reference = lookup(reference)
        self.rtol, self.atol = float(rtol), float(atol)
        self._dir = Path(report_dir) if report_dir is not None else None
        self.ops_checked = 0
        self.kernels_checked = 0
        self.unchecked: dict[str, str] = {}  # what could not be re-run on the reference, and why

    @property
    def report_dir(self) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="needle-divergence-"))
        return self._dir

    # -- ops ------------------------------------------------------------------------------
    def op_begin(self, frame: OpFrame) -> None:
        arrays = [x.cached_data for x in frame.inputs]
        if not arrays or any(not isinstance(a, NDArray) for a in arrays):
            return  # tuple inputs (make_tuple of TensorTuples) are checked where they were made
        if all(a.device == self.reference for a in arrays):
            return
        with TAP.quiet():
            frame.notes[self] = [np.array(a.numpy(), copy=True) for a in arrays]
        frame.notes[(self, "layout")] = [_layout(a) for a in arrays]

    def op_end(self, frame: OpFrame, result: Any) -> None:
        host = frame.notes.pop(self, None)
        if host is None:
            return
        ref = self.reference
        with TAP.quiet():
            try:
                # a copy of the op: some ops keep what compute() made for their gradient (norm statistics)
                expected = copy.copy(frame.op).compute(*[NDArray(x, device=ref) for x in host])
            except Exception as exc:  # the reference cannot run it: say so once, keep going
                self._skip(frame.name, f"{type(exc).__name__}: {exc}")
                return
            data = result.cached_data
            got = data if isinstance(data, tuple) else (data,)
            want = expected if isinstance(expected, tuple) else (expected,)
            self.ops_checked += 1
            for i, (g, w) in enumerate(zip(got, want, strict=True)):
                mismatch = compare(g.numpy(), w.numpy(), self.rtol, self.atol)
                if mismatch is not None:
                    raise self._op_error(frame, i, len(got), mismatch, host, g.device)

    # -- kernels outside ops ----------------------------------------------------------------
    def kernel_begin(self, call: KernelCall) -> None:
        if call.frame is not None or call.name in _NOT_RECHECKED or call.device == self.reference:
            return
        to_numpy = TAP.original(call.device, "to_numpy")
        keys: dict[int, str] = {}
        arrays: dict[str, np.ndarray] = {}
        seen: dict[int, str] = {}
        with TAP.quiet():
            for i, arg in enumerate(call.args):
                if _is_buffer(arg):
                    key = seen.get(id(arg))
                    if key is None:
                        key = seen[id(arg)] = f"arg{i}"
                        arrays[key] = np.array(to_numpy(arg, (arg.size,), (1,), 0), copy=True)
                    keys[i] = key
        call.notes[self] = (keys, arrays)

    def kernel_end(self, call: KernelCall) -> None:
        saved = call.notes.pop(self, None)
        if saved is None:
            return
        keys, arrays = saved
        ref = self.reference
        kernel = getattr(ref, call.name, None)
        if kernel is None:
            self._skip(call.name, f"the reference device {ref!r} has no {call.name} kernel")
            return
        to_numpy = TAP.original(call.device, "to_numpy")
        with TAP.quiet():
            made: dict[str, Any] = {}
            for key, host in arrays.items():
                buf = ref.Array(host.size) if host.dtype == np.float32 else ref.Array(host.size, str(host.dtype))
                if host.size:
                    ref.from_numpy(host, buf)
                made[key] = buf
            kernel(*[made[keys[i]] if i in keys else a for i, a in enumerate(call.args)])
            self.kernels_checked += 1
            first: dict[str, int] = {}
            for i, key in keys.items():
                first.setdefault(key, i)
            for key, i in first.items():
                arg = call.args[i]
                got = to_numpy(arg, (arg.size,), (1,), 0)
                want = ref.to_numpy(made[key], (arg.size,), (1,), 0)
                mismatch = compare(np.asarray(got), np.asarray(want), self.rtol, self.atol)
                if mismatch is not None:
                    raise self._kernel_error(call, i, mismatch, keys, arrays)

    # -- reports --------------------------------------------------------------------------------
    def _skip(self, what: str, why: str) -> None:
        if what not in self.unchecked:
            self.unchecked[what] = why
            warnings.warn(f"check_against: {what} is not checked (cannot run on {self.reference!r}): {why}",
                          RuntimeWarning, stacklevel=4)

    def _tolerance(self) -> str:
        return f"rtol={self.rtol:g}, atol={self.atol:g}"

    def _op_error(self, frame: OpFrame, index: int, n_out: int, mismatch: Mismatch, host: list[np.ndarray],
                  device: Any) -> DivergenceError:
        layouts = frame.notes.pop((self, "layout"), [])
        kernels = [(str(c.device.canonical), c.name, c.provider) for c in frame.kernels]
        stem = f"divergence-{frame.seq:06d}-{frame.name}"
        script = self._write(lambda: reproducer.write_op_case(
            self.report_dir, stem, frame.op, host, device.canonical, self.reference.canonical, self.rtol, self.atol))
        output = f" (output {index} of {n_out})" if n_out > 1 else ""
        lines = [
            f"{frame.name}{output} on {device.canonical} diverged from the reference {self.reference.canonical} "
            f"({self._tolerance()})",
            f"  op:        {reproducer._describe(frame.op)}, {frame.phase}, op #{frame.seq} since checking began"
            + _caller(),
            *_input_lines(layouts),
            "  kernels:   " + (_kernel_list(kernels) or "none (the op only made views)"),
            f"  error:     {mismatch.what}",
            f"  reproduce: {_script_line(script)}",
        ]
        return DivergenceError("\n".join(lines), op=frame.name, phase=frame.phase, kernels=kernels,
                               mismatch=mismatch, reproducer=script)

    def _kernel_error(self, call: KernelCall, index: int, mismatch: Mismatch, keys: dict[int, str],
                      arrays: dict[str, np.ndarray]) -> DivergenceError:
        kernels = [(str(call.device.canonical), call.name, call.provider)]
        stem = f"divergence-kernel-{call.name}"
        script = self._write(lambda: reproducer.write_kernel_case(
            self.report_dir, stem, call.name, call.args, keys, arrays, call.device.canonical,
            self.reference.canonical, self.rtol, self.atol))
        scalars = ", ".join(repr(a) if not _is_buffer(a) else f"<buffer {a.size}>" for a in call.args)
        lines = [
            f"kernel {call.name} on {call.device.canonical} (outside any Tensor op, e.g. an optimizer update) "
            f"diverged from the reference {self.reference.canonical} ({self._tolerance()})",
            f"  call:      {call.name}({scalars})" + _caller(),
            "  kernels:   " + _kernel_list(kernels),
            f"  error:     in argument {index}: {mismatch.what}",
            f"  reproduce: {_script_line(script)}",
        ]
        return DivergenceError("\n".join(lines), op=None, phase="outside ops", kernels=kernels,
                               mismatch=mismatch, reproducer=script)

    @staticmethod
    def _write(make: Any) -> Path | None:
        try:
            return make()
        except OSError as exc:  # a read-only disk must not hide the divergence itself
            warnings.warn(f"check_against: could not write the reproducer: {exc}", RuntimeWarning, stacklevel=5)
            return None


def _is_buffer(x: Any) -> bool:
    return hasattr(x, "ptr") and hasattr(x, "size") and not isinstance(x, np.ndarray)


def _layout(a: NDArray) -> str:
    return f"shape {a.shape} strides {a.strides} offset {a._offset} {a.dtype} on {a.device.canonical}"


def _input_lines(layouts: list[str]) -> list[str]:
    return [("  inputs:    " if i == 0 else "             ") + f"#{i} {text}" for i, text in enumerate(layouts)]


def _kernel_list(kernels: list[tuple[str, str, str]]) -> str:
    merged: dict[tuple[str, str, str], int] = {}
    for k in kernels:
        merged[k] = merged.get(k, 0) + 1
    return "; ".join(f"{name}{f' x{n}' if n > 1 else ''} on {dev} from {provider}"
                     for (dev, name, provider), n in merged.items())


def _script_line(script: Path | None) -> str:
    return f"python {script}" if script is not None else "(no reproducer: it could not be written)"


def _caller() -> str:
    """``, called from file.py:12 (function)``: the innermost frame outside needle_core."""
    for entry in reversed(traceback.extract_stack()[:-1]):
        if not entry.filename.startswith(_HERE) and "contextlib" not in entry.filename:
            return f", called from {entry.filename}:{entry.lineno} ({entry.name})"
    return ""


@contextlib.contextmanager
def check_against(reference: str = "cpu_numpy", rtol: float = 1e-4, atol: float = 1e-5,
                  report_dir: str | os.PathLike | None = None) -> Iterator[Checker]:
    """Re-run every op (and kernels outside ops) on ``reference``; raise ``DivergenceError``
    at the first result beyond ``atol + rtol * |reference|`` (see ``compare.py``).

    ``report_dir``: where reproducers go (default: a new ``needle-divergence-*`` temp dir).
    Yields the checker (``ops_checked``, ``kernels_checked``, ``unchecked``).
    """
    checker = Checker(reference, rtol, atol, report_dir)
    TAP.add(checker)
    try:
        yield checker
    finally:
        TAP.remove(checker)


_ENV_CHECKER: Checker | None = None


def enable_from_env() -> None:
    """``NEEDLE_CHECK_AGAINST=cpu_numpy`` (with optional ``NEEDLE_CHECK_RTOL``,
    ``NEEDLE_CHECK_ATOL``, ``NEEDLE_CHECK_DIR``): check the whole run.

    The reference device is looked up on the first op, so importing needle still
    loads no plugin."""
    global _ENV_CHECKER
    name = os.environ.get("NEEDLE_CHECK_AGAINST", "").strip()
    if not name or _ENV_CHECKER is not None:
        return
    _ENV_CHECKER = _LazyChecker(name)
    TAP.add(_ENV_CHECKER)


class _LazyChecker(Checker):
    """A Checker whose reference device is resolved on first use (after plugins load)."""

    def __init__(self, reference: str) -> None:
        self._name = reference
        self._ready = False
        try:
            rtol = float(os.environ.get("NEEDLE_CHECK_RTOL", "1e-4"))
            atol = float(os.environ.get("NEEDLE_CHECK_ATOL", "1e-5"))
        except ValueError as exc:
            raise ValueError(f"NEEDLE_CHECK_RTOL / NEEDLE_CHECK_ATOL must be numbers: {exc}") from None
        self._args = (rtol, atol, os.environ.get("NEEDLE_CHECK_DIR") or None)

    def _resolve(self) -> None:
        if not self._ready:
            self._ready = True
            Checker.__init__(self, self._name, *self._args)
            TAP.watch(self.reference)

    def op_begin(self, frame: OpFrame) -> None:
        self._resolve()
        super().op_begin(frame)

    def kernel_begin(self, call: KernelCall) -> None:
        self._resolve()
        super().kernel_begin(call)
