"""Cost of calling a kernel through the registry's frozen table.

A device's kernels are plain instance attributes, so ``device.ewise_add(a, b, out)``
should cost about what ``table["ewise_add"](a, b, out)`` costs (docs/design.md §6: at most
60 ns over a dict lookup). Each row runs 100 calls unrolled in one function (no loop
or lambda overhead between them): ns per call = time / 100, and the throughput
column is in million calls per second.
"""

from __future__ import annotations

import numpy as np
from harness import Row

UNROLL = 100
NOOP, REAL = "kernel call ×100, no-op kernel", "kernel call ×100, cpu_numpy ewise_add of 4 floats"


def _unrolled(setup: str, statement: str, namespace: dict) -> object:
    """``def f(): <setup>; <statement> x UNROLL`` compiled once, names bound as locals."""
    body = "".join(f"    {line.strip()}\n" for line in setup.split(";")) + f"    {statement}\n" * UNROLL
    exec(f"def f():\n{body}", namespace)  # noqa: S102 - generated from the literals below
    return namespace["f"]


def _noop(*args: object) -> None:
    return None


def _rows_for(group: str, kernel, device, extra: dict) -> list[Row]:
    ns = {"KERNEL": kernel, "DEVICE": device, "TABLE": {"ewise_add": kernel}, **extra}
    args = "a, b, out"
    setup = "k = KERNEL; t = TABLE; d = DEVICE; a, b, out = A, B, OUT"
    work = dict(work=UNROLL * 1e-6, work_unit="M calls/s")
    bare, lookup = f"{group}|bare", f"{group}|dict"
    return [
        Row(group, "bare function call", _unrolled(setup, f"k({args})", dict(ns)), key=bare, **work),
        Row(
            group,
            "dict lookup + call",
            _unrolled(setup, f't["ewise_add"]({args})', dict(ns)),
            key=lookup,
            compare=(bare,),
            **work,
        ),
        Row(
            group,
            "device attribute + call",
            _unrolled(setup, f"d.ewise_add({args})", dict(ns)),
            compare=(bare, lookup),
            note="target: ≤ 60 ns/call over the dict lookup",
            **work,
        ),
    ]


def _noop_rows() -> list[Row]:
    from needle_core.device import Device
    from needle_core.kernels import PRIMITIVE_KERNELS

    device = Device("bench", 0, {name: _noop for name in PRIMITIVE_KERNELS})
    return _rows_for(NOOP, _noop, device, {"A": None, "B": None, "OUT": None})


def _real_rows() -> list[Row]:
    try:
        import needle as ndl

        device = ndl.cpu_numpy()
        if not device.enabled():
            return [Row(REAL, "needle cpu_numpy", None, skip=device.unavailable_message())]
    except Exception as exc:
        return [Row(REAL, "needle cpu_numpy", None, skip=f"{type(exc).__name__}: {exc}")]
    buffers = {}
    for name, values in (("A", [1, 2, 3, 4]), ("B", [4, 3, 2, 1]), ("OUT", [0, 0, 0, 0])):
        buffers[name] = device.Array(4)
        device.from_numpy(np.asarray(values, dtype=np.float32), buffers[name])
    kernel = vars(device)["ewise_add"]  # the very function the device attribute holds
    return _rows_for(REAL, kernel, device, buffers)


def rows() -> list[Row]:
    return _noop_rows() + _real_rows()
