"""The kernel namespace of one opencl device: the ABI of docs/backends.md as Python
callables that enqueue kernels of the runtime's program.

Calls return as soon as the work is queued; reads (``to_numpy``) wait for it. The hot
path is: a size check, then ``Runtime.launch`` (arguments set and one enqueue under a
lock). Operand sizes are checked as docs/backends.md §1 says (compact operands are
whole buffers of exactly the size the kernel works on).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from needle_core.kernels import ELEMENTWISE, ElementwiseKernel

from . import views
from .runtime import Buffer, Runtime
from .source import MATMUL_RM, REDUCE_LOCAL, STATE_BYTES, strided_rows

_EWISE_LOCAL = 256  # one fixed work-group size: PoCL compiles each size it sees once
_I32, _I64, _F32 = np.int32, np.int64, np.float32


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _pieces(rt: Runtime, n: int, inner: int, group: int) -> tuple[tuple[int], tuple[int, int, int]]:
    """Global size and trailing (n, inner, chunk) arguments of a view kernel whose view has
    ``n`` elements and a last axis of ``inner`` (strided.cl: one piece per work-item)."""
    chunk = min(rt.view_chunk, inner)
    return (_round_up((n // inner) * -(-inner // chunk), group),), (_I32(n), _I32(inner), _I32(chunk))


def _too_small(name: str, buf: Buffer, need: int) -> ValueError:
    return ValueError(f"{name}: expected a buffer of at least {need} elements, got {buf.size}")


def _mismatch(name: str, sizes: dict[str, int], need: int) -> ValueError:
    got = ", ".join(f"{k} has {v}" for k, v in sizes.items() if v != need)
    return ValueError(
        f"{name}: every operand must be a compact buffer of exactly {need} elements, but {got}; "
        "compact views and allocate outputs of the result's size"
    )


def make_kernels(rt: Runtime) -> dict[str, Any]:
    """Every primitive kernel and the optional ones that pay off on OpenCL."""
    rt.build()
    table: dict[str, Any] = {"Array": lambda size, dtype="float32": Buffer(rt, size, dtype)}
    for row in ELEMENTWISE:
        table[row.name] = _elementwise(rt, row)
    table.update(_host_and_views(rt))
    table["ewise_strided"] = _ewise_strided(rt)
    table.update(_reductions(rt))
    table.update(_matmuls(rt))
    table.update(_optimisers(rt))
    table["synchronize"] = rt.finish  # tool hook: the profiler times execution, not enqueueing
    return table


def _elementwise(rt: Runtime, row: ElementwiseKernel) -> Callable[..., None]:
    name, group = row.name, rt.group(_EWISE_LOCAL)
    local = (group,)

    def unary(a: Buffer, out: Buffer) -> None:
        n = out.size
        if a.size != n:
            raise _mismatch(name, {"a": a.size}, n)
        if n:
            rt.launch(name, (_round_up(n, group),), local, a.mem, out.mem, _I32(n))

    def ewise(a: Buffer, b: Buffer, out: Buffer) -> None:
        n = out.size
        if a.size != n or b.size != n:
            raise _mismatch(name, {"a": a.size, "b": b.size}, n)
        if n:
            rt.launch(name, (_round_up(n, group),), local, a.mem, b.mem, out.mem, _I32(n))

    def scalar(a: Buffer, val: float, out: Buffer) -> None:
        n = out.size
        if a.size != n:
            raise _mismatch(name, {"a": a.size}, n)
        if n:
            rt.launch(name, (_round_up(n, group),), local, a.mem, _F32(val), out.mem, _I32(n))

    fn = {"unary": unary, "scalar": scalar, "binary": ewise}[row.kind]
    fn.__name__ = fn.__qualname__ = name
    return fn


def _ewise_strided(rt: Runtime) -> Callable[..., None]:
    kernels = {row.name: f"{row.name}_strided" for row in strided_rows()}
    group = rt.group(_EWISE_LOCAL)
    local = (group,)

    def ewise_strided(
        name: str,
        a: Buffer,
        a_strides: tuple,
        a_offset: int,
        b: Buffer,
        b_strides: tuple,
        b_offset: int,
        out: Buffer,
        shape: tuple,
    ) -> None:
        kernel = kernels.get(name)
        if kernel is None:
            raise ValueError(f"ewise_strided: {name!r} is not a binary array row; expected one of {sorted(kernels)}")
        n = views.check_view(a.size, shape, a_strides, a_offset, "ewise_strided (a)")
        views.check_view(b.size, shape, b_strides, b_offset, "ewise_strided (b)")
        if out.size != math.prod(shape):
            raise _mismatch("ewise_strided", {"out": out.size}, math.prod(shape))
        if n == 0:
            return
        dims, sa, sb = views.simplify_pair(shape, a_strides, b_strides)
        va, vb = views.pack(dims, sa, a_offset), views.pack(dims, sb, b_offset)
        size, tail = _pieces(rt, n, dims[-1], group)
        rt.launch(kernel, size, local, a.mem, va, b.mem, vb, out.mem, *tail)

    return ewise_strided


def _host_and_views(rt: Runtime) -> dict[str, Any]:
    local = rt.group(_EWISE_LOCAL)

    def to_numpy(a: Buffer, shape: tuple, strides: tuple, offset: int) -> np.ndarray:
        views.check_view(a.size, shape, strides, offset, "to_numpy")
        return rt.read(a, shape, strides, offset)

    def from_numpy(array: np.ndarray, out: Buffer) -> None:
        given = array
        array = np.ascontiguousarray(array, dtype=np.float32)
        if array is given or array.base is not None:  # the caller's memory: the copy runs later
            array = array.copy()
        if array.size != out.size:
            raise ValueError(f"from_numpy: expected {out.size} elements, got an array of shape {array.shape}")
        rt.write(array, out)

    def fill(out: Buffer, val: float) -> None:
        if out.size:
            rt.launch("fill", (_round_up(out.size, local),), (local,), out.mem, _F32(val), _I32(out.size))

    def compact(a: Buffer, out: Buffer, shape: tuple, strides: tuple, offset: int) -> None:
        n = views.check_view(a.size, shape, strides, offset, "compact")
        if n == 0:
            return
        if out.size < n:
            raise _too_small("compact", out, n)
        dims, steps = views.simplify(shape, strides)
        if len(dims) == 1 and steps[0] == 1:  # a contiguous range: a plain device copy
            rt.copy("compact", out.mem, a.mem, byte_count=4 * n, src_offset=4 * offset)
            return
        size, tail = _pieces(rt, n, dims[-1], local)
        rt.launch("compact", size, (local,), a.mem, out.mem, views.pack(dims, steps, offset), *tail)

    def ewise_setitem(a: Buffer, out: Buffer, shape: tuple, strides: tuple, offset: int) -> None:
        n = views.check_view(out.size, shape, strides, offset, "ewise_setitem")
        if n == 0:
            return
        if a.size < n:
            raise _too_small("ewise_setitem", a, n)
        dims, steps = views.simplify(shape, strides)
        if len(dims) == 1 and steps[0] == 1:
            rt.copy("ewise_setitem", out.mem, a.mem, byte_count=4 * n, dst_offset=4 * offset)
            return
        size, tail = _pieces(rt, n, dims[-1], local)
        rt.launch("ewise_setitem", size, (local,), a.mem, out.mem, views.pack(dims, steps, offset), *tail)

    def scalar_setitem(size: int, val: float, out: Buffer, shape: tuple, strides: tuple, offset: int) -> None:
        n = views.check_view(out.size, shape, strides, offset, "scalar_setitem")
        if n != size:
            raise ValueError(f"scalar_setitem: size {size} does not match the view's {n} elements (shape {shape})")
        if n:
            dims, steps = views.simplify(shape, strides)
            size, tail = _pieces(rt, n, dims[-1], local)
            rt.launch("scalar_setitem", size, (local,), _F32(val), out.mem, views.pack(dims, steps, offset), *tail)

    return {
        "to_numpy": to_numpy,
        "from_numpy": from_numpy,
        "fill": fill,
        "compact": compact,
        "ewise_setitem": ewise_setitem,
        "scalar_setitem": scalar_setitem,
    }


def _reductions(rt: Runtime) -> dict[str, Any]:
    tree_ok = rt.max_group >= REDUCE_LOCAL

    def split_groups(rows: int, size: int) -> int:
        """Work-groups per row: enough for about four per compute unit in all, each with
        at least 16 elements per work-item; 1 keeps one work-group per row."""
        want = (4 * rt.compute_units) // rows
        return max(1, min(want, size // (16 * REDUCE_LOCAL), 1024))

    def launch(prefix: str, args: tuple, out: Buffer, rows: int, size: int, empty: float, scale: float | None) -> None:
        if rows == 0:
            return
        if size == 0:  # the identity, like NumPy's sum of nothing (max of nothing: -inf)
            rt.launch("fill", (_round_up(rows, 64),), (rt.group(64),), out.mem, _F32(empty), _I32(rows))
            return
        groups = split_groups(rows, size) if scale is not None and tree_ok else 1
        if groups > 1:  # few long rows: several work-groups per row, then one join
            state = STATE_BYTES[prefix.removesuffix("_view")]
            partial = rt.take(rows * groups * state)
            rt.launch(
                f"{prefix}_split", (rows * groups * REDUCE_LOCAL,), (REDUCE_LOCAL,),
                *args, partial, _I32(rows), _I64(size), _I32(groups),
            )  # fmt: skip
            group = rt.group(64)
            rt.launch(
                f"{prefix}_join", (_round_up(rows, group),), (group,),
                partial, out.mem, _I32(rows), _I32(groups), _F32(scale),
            )  # fmt: skip
            rt.pool.give(partial)  # safe to reuse at once: later commands on this in-order queue run after these
            return
        tail = (out.mem, _I32(rows), _I64(size)) + (() if scale is None else (_F32(scale),))
        if tree_ok and size >= 2 * REDUCE_LOCAL:  # long rows: a work-group per row
            rt.launch(f"{prefix}_tree", (rows * REDUCE_LOCAL,), (REDUCE_LOCAL,), *args, *tail)
        else:  # short rows: a work-item per row
            group = rt.group(64)
            rt.launch(f"{prefix}_serial", (_round_up(rows, group),), (group,), *args, *tail)

    def check(name: str, a: Buffer, out: Buffer, reduce_size: int) -> None:
        if a.size != out.size * reduce_size:
            raise ValueError(
                f"{name}: expected a compact operand of {out.size} rows x {reduce_size} = "
                f"{out.size * reduce_size} elements, got a buffer of {a.size}"
            )

    def contiguous(prefix: str, empty: float) -> Callable[..., None]:
        def reduce(a: Buffer, out: Buffer, reduce_size: int) -> None:
            check(prefix, a, out, reduce_size)
            launch(prefix, (a.mem,), out, out.size, int(reduce_size), empty, 1.0)

        reduce.__name__ = reduce.__qualname__ = prefix
        return reduce

    def strided(prefix: str, empty: float) -> Callable[..., None]:
        name = prefix + "_view"
        is_sum = prefix == "reduce_sum"

        def reduce_view(a: Buffer, out: Buffer, shape: tuple, strides: tuple, offset: int, reduce_ndim: int) -> None:
            views.check_view(a.size, shape, strides, offset, name)
            if not 0 <= reduce_ndim <= len(shape):
                raise ValueError(
                    f"{name}: reduce_ndim must be in [0, {len(shape)}] for shape {shape}, got {reduce_ndim}"
                )
            kept = len(shape) - reduce_ndim  # reduce_ndim 0: every row is one element
            rows, size = math.prod(shape[:kept]), math.prod(shape[kept:])
            if out.size < rows:
                raise _too_small(name, out, rows)
            # A broadcast (stride-0) reduced axis repeats one value: max ignores it, and a
            # sum multiplies by its length instead of adding it up (a 2 x 1.2e9 broadcast
            # view reduces in no time).
            repeat = math.prod(n for n, st in zip(shape[kept:], strides[kept:], strict=True) if st == 0)
            if size and repeat > 1:
                axes = [i for i in range(len(shape)) if i < kept or strides[i] != 0]
                shape, strides = tuple(shape[i] for i in axes), tuple(strides[i] for i in axes)
                size //= repeat
            view = views.pack(*views.simplify(shape, strides), offset)
            launch(name, (a.mem, view), out, rows, size, empty, float(repeat) if is_sum else 1.0)

        reduce_view.__name__ = reduce_view.__qualname__ = name
        return reduce_view

    def logsumexp(a: Buffer, out: Buffer, reduce_size: int) -> None:
        check("logsumexp", a, out, reduce_size)
        launch("logsumexp", (a.mem,), out, out.size, int(reduce_size), -math.inf, None)

    return {
        "reduce_sum": contiguous("reduce_sum", 0.0),
        "reduce_max": contiguous("reduce_max", -math.inf),
        "reduce_sum_view": strided("reduce_sum", 0.0),
        "reduce_max_view": strided("reduce_max", -math.inf),
        "logsumexp": logsumexp,
    }


def _matmuls(rt: Runtime) -> dict[str, Any]:
    def run(a: Buffer, b: Buffer, out: Buffer, batch: int, m: int, n: int, p: int) -> None:
        if a.size < batch * m * n or b.size < batch * n * p or out.size < batch * m * p:
            raise ValueError(
                f"matmul: buffers of {a.size}, {b.size}, {out.size} elements are too small for "
                f"{batch} x ({m}, {n}) @ ({n}, {p})"
            )
        if batch * m * p == 0:
            return
        if n == 0:
            rt.launch("fill", (_round_up(batch * m * p, 64),), (rt.group(64),), out.mem, _F32(0.0), _I32(batch * m * p))
            return
        sizes = (_I32(m), _I32(n), _I32(p))
        if rt.matmul_variant == "local":
            grid = (_round_up(p, 64) // 4, _round_up(m, 64) // 4, batch)
            rt.launch("matmul_local", grid, (16, 16, 1), a.mem, b.mem, out.mem, *sizes)
            return
        nib, njb = -(-m // MATMUL_RM), -(-p // 16)
        b_packed = rt.take(4 * batch * njb * n * 16)
        rt.launch("pack_b", (_round_up(n, 16), njb, batch), (16, 1, 1), b.mem, b_packed, _I32(n), _I32(p))
        grid = (_round_up(njb, 4), nib, batch)
        rt.launch("matmul_packed", grid, (4, 1, 1), a.mem, b_packed, out.mem, *sizes, _I32(njb))
        rt.pool.give(b_packed)  # safe to reuse at once: later commands on this in-order queue run after these

    def matmul(a: Buffer, b: Buffer, out: Buffer, m: int, n: int, p: int) -> None:
        run(a, b, out, 1, m, n, p)

    def batched_matmul(a: Buffer, b: Buffer, out: Buffer, batch: int, m: int, n: int, p: int) -> None:
        run(a, b, out, batch, m, n, p)

    return {"matmul": matmul, "batched_matmul": batched_matmul}


def _optimisers(rt: Runtime) -> dict[str, Any]:
    local = rt.group(_EWISE_LOCAL)

    def check(name: str, size: int, **bufs: Buffer) -> None:
        if any(buf.size != size for buf in bufs.values()):
            raise _mismatch(name, {k: b.size for k, b in bufs.items()}, size)

    def sgd_update(w: Buffer, g: Buffer, u: Buffer, size: int, lr: float, momentum: float, weight_decay: float) -> None:
        check("sgd_update", size, w=w, g=g, u=u)
        if size:
            rt.launch(
                "sgd_update",
                (_round_up(size, local),),
                (local,),
                w.mem,
                g.mem,
                u.mem,
                _I32(size),
                _F32(lr),
                _F32(momentum),
                _F32(weight_decay),
            )

    def adam_update(
        w: Buffer,
        g: Buffer,
        m: Buffer,
        v: Buffer,
        size: int,
        lr: float,
        beta1: float,
        beta2: float,
        eps: float,
        weight_decay: float,
        t: int,
    ) -> None:
        check("adam_update", size, w=w, g=g, m=m, v=v)
        if size:
            inv_c1, inv_c2 = 1.0 / (1.0 - beta1**t), 1.0 / (1.0 - beta2**t)
            rt.launch(
                "adam_update",
                (_round_up(size, local),),
                (local,),
                w.mem,
                g.mem,
                m.mem,
                v.mem,
                _I32(size),
                _F32(lr),
                _F32(beta1),
                _F32(beta2),
                _F32(eps),
                _F32(weight_decay),
                _F32(inv_c1),
                _F32(inv_c2),
            )

    return {"sgd_update": sgd_update, "adam_update": adam_update}
