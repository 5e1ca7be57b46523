"""Reproducer files for a divergence: the saved inputs and a short script re-running
the one op (or kernel) on the device under test and on the reference."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

_HEADER = '''"""needle check_against reproducer: {what} on {device} vs {reference}.

Run it with the same backends as the failing run (same NEEDLE_PLUGINS / installed
packages): python {script}
Inputs are saved as compact arrays; the failing call's original strides are in the
DivergenceError message.
"""

from pathlib import Path

import numpy as np

import needle as ndl
from needle_core.tools.compare import compare

HERE = Path(__file__).resolve().parent
RTOL, ATOL = {rtol!r}, {atol!r}
DEVICE, REFERENCE = {device!r}, {reference!r}
saved = np.load(HERE / "{stem}.npz")
'''

_OP_BODY = '''import pickle

from needle.backend_ndarray import NDArray

inputs = [saved[f"input{{i}}"] for i in range({n})]
{op_line}


def run(name):
    out = op.compute(*[NDArray(x, device=ndl.device(name)) for x in inputs])
    return [o.numpy() for o in (out if isinstance(out, tuple) else (out,))]
'''

_KERNEL_BODY = '''ARGS = {args}  # ("buffer", key) entries are the saved buffers


def run(name):
    dev = ndl.device(name)
    made = {{}}
    args = []
    for arg in ARGS:
        if isinstance(arg, tuple) and len(arg) == 2 and arg[0] == "buffer":
            if arg[1] not in made:
                host = saved[arg[1]]
                buf = dev.Array(host.size) if host.dtype == np.float32 else dev.Array(host.size, str(host.dtype))
                dev.from_numpy(host, buf)
                made[arg[1]] = buf
            arg = made[arg[1]]
        args.append(arg)
    dev.{kernel}(*args)
    return [dev.to_numpy(b, (b.size,), (1,), 0) for b in made.values()]
'''

_FOOTER = '''

for i, (got, want) in enumerate(zip(run(DEVICE), run(REFERENCE), strict=True)):
    mismatch = compare(got, want, RTOL, ATOL)
    print(f"output {i}:", "agrees" if mismatch is None else mismatch.what)
'''


def _paths(directory: Path, stem: str) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"{stem}.py", directory / f"{stem}.npz"


def write_op_case(directory: Path, stem: str, op: Any, inputs: list[np.ndarray], device: str, reference: str,
                  rtol: float, atol: float) -> Path:
    """``<stem>.py`` + ``<stem>.npz`` (+ ``<stem>.op.pkl``): ``op.compute`` on both devices."""
    script, data = _paths(directory, stem)
    np.savez(data, **{f"input{i}": x for i, x in enumerate(inputs)})
    try:
        (directory / f"{stem}.op.pkl").write_bytes(pickle.dumps(op))
        op_line = f'op = pickle.loads((HERE / "{stem}.op.pkl").read_bytes())  # {_describe(op)}'
    except Exception as exc:  # an op holding something unpicklable: say what to rebuild
        op_line = f"raise NotImplementedError('rebuild the op by hand: {_describe(op)} ({type(exc).__name__})')"
    head = _HEADER.format(what=type(op).__name__, device=device, reference=reference, script=script, rtol=rtol,
                          atol=atol, stem=stem)
    script.write_text(head + "\n" + _OP_BODY.format(n=len(inputs), op_line=op_line) + _FOOTER)
    return script


def write_kernel_case(directory: Path, stem: str, kernel: str, args: tuple[Any, ...], keys: dict[int, str],
                      arrays: dict[str, np.ndarray], device: str, reference: str, rtol: float, atol: float) -> Path:
    """The kernel call with its buffer arguments saved (``keys``: argument index -> key of
    ``arrays``, the buffers' values before the call; an aliased buffer has one key)."""
    script, data = _paths(directory, stem)
    np.savez(data, **arrays)
    listed = [("buffer", keys[i]) if i in keys else a for i, a in enumerate(args)]
    head = _HEADER.format(what=kernel, device=device, reference=reference, script=script, rtol=rtol, atol=atol,
                          stem=stem)
    script.write_text(head + "\n" + _KERNEL_BODY.format(args=repr(listed), kernel=kernel) + _FOOTER)
    return script


def _describe(op: Any) -> str:
    attrs = {k: v for k, v in vars(op).items() if not k.startswith("_")} if hasattr(op, "__dict__") else {}
    inner = ", ".join(f"{k}={v!r}" for k, v in attrs.items())
    return f"{type(op).__name__}({inner})".replace("'", '"')
