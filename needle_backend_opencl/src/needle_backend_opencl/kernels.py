"""The kernel namespace of one opencl device: the ABI of docs/backends.md as Python
callables that enqueue kernels of the runtime's program.

Calls return as soon as the work is queued; reads (``to_numpy``) wait for it. The hot
path is: a size check, then ``Runtime.launch`` (arguments set and one enqueue under a
lock). Operand sizes are checked as docs/backends.md §1 says (compact operands are
whole buffers of exactly the size the kernel works on).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from needle_core.kernels import ELEMENTWISE, ElementwiseKernel
from needle_core.views import check_class_labels, check_sizes

from . import views
from .runtime import Buffer, Runtime
from .render import MATMUL_RM, REDUCE_LOCAL, STATE_BYTES, strided_rows

_EWISE_LOCAL = 256  # one fixed work-group size: PoCL compiles each size it sees once


_MAX_PLANS = 4096  # remembered view geometries per kernel family (forgotten all at once past this)


class _Plans:
    """Launch plans by view geometry. A training step repeats the same shapes and strides
    every step, so validating a view, merging its axes and packing its ``view_t`` run once
    per geometry; the plan holds no buffer, only sizes and argument bytes. Invalid
    geometries raise every time (errors are not remembered)."""

    def __init__(self, make: Callable[..., Any]) -> None:
        self._make, self._plans = make, {}

    def __call__(self, *key: Any) -> Any:
        try:
            return self._plans[key]
        except KeyError:
            plan = self._make(*key)
        except TypeError:  # an unhashable geometry (lists): planned every time
            return self._make(*key)
        if len(self._plans) >= _MAX_PLANS:
            self._plans.clear()
        self._plans[key] = plan
        return plan


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _pieces(rt: Runtime, n: int, inner: int, group: int) -> tuple[tuple[int], tuple[int, int, int]]:
    """Global size and trailing (n, inner, chunk) arguments of a view kernel whose view has
    ``n`` elements and a last axis of ``inner`` (strided.cl: one piece per work-item)."""
    chunk = min(rt.view_chunk, inner)
    return (_round_up((n // inner) * -(-inner // chunk), group),), (int(n), int(inner), int(chunk))


def _mismatch(name: str, sizes: dict[str, int], need: int) -> ValueError:
    got = ", ".join(f"{k} has {v}" for k, v in sizes.items() if v != need)
    return ValueError(
        f"{name}: every operand must be a compact buffer of exactly {need} elements, but {got}; "
        "compact views and allocate outputs of the result's size"
    )


def make_kernels(rt: Runtime) -> dict[str, Any]:
    """Every primitive kernel and the optional ones that pay off on OpenCL."""
    rt.build()
    table: dict[str, Any] = {"Array": functools.partial(Buffer, rt)}
    for row in ELEMENTWISE:
        table[row.name] = _elementwise(rt, row)
    table.update(_host_and_views(rt))
    table["ewise_strided"] = _ewise_strided(rt)
    table.update(_reductions(rt))
    table.update(_matmuls(rt))
    table.update(_optimisers(rt))
    table.update(_norms(rt))
    table.update(_softmax_losses(rt))
    table["synchronize"] = rt.finish  # tool hook: the profiler times execution, not enqueueing
    return table


def _elementwise(rt: Runtime, row: ElementwiseKernel) -> Callable[..., None]:
    # The hottest path of the backend: sizes checked, then one launch; scalar arguments
    # go as Python numbers (the kernel's scalar types are declared, pyopencl packs them).
    name, group = row.name, rt.group(_EWISE_LOCAL)
    local, launch = (group,), rt.launch

    def unary(a: Buffer, out: Buffer) -> None:
        n = out.size
        if a.size != n:
            raise _mismatch(name, {"a": a.size}, n)
        if n:
            launch(name, (-(-n // group) * group,), local, a.mem, out.mem, n)

    def ewise(a: Buffer, b: Buffer, out: Buffer) -> None:
        n = out.size
        if a.size != n or b.size != n:
            raise _mismatch(name, {"a": a.size, "b": b.size}, n)
        if n:
            launch(name, (-(-n // group) * group,), local, a.mem, b.mem, out.mem, n)

    def scalar(a: Buffer, val: float, out: Buffer) -> None:
        n = out.size
        if a.size != n:
            raise _mismatch(name, {"a": a.size}, n)
        if n:
            launch(name, (-(-n // group) * group,), local, a.mem, val, out.mem, n)

    fn = {"unary": unary, "scalar": scalar, "binary": ewise}[row.kind]
    fn.__name__ = fn.__qualname__ = name
    return fn


def _ewise_strided(rt: Runtime) -> Callable[..., None]:
    kernels = {row.name: f"{row.name}_strided" for row in strided_rows()}
    group = rt.group(_EWISE_LOCAL)
    local = (group,)

    def plan(name: str, a_size: int, a_strides: tuple, a_offset: int, b_size: int, b_strides: tuple,
             b_offset: int, out_size: int, shape: tuple) -> tuple | None:  # fmt: skip
        kernel = kernels.get(name)
        if kernel is None:
            raise ValueError(f"ewise_strided: {name!r} is not a binary array row; expected one of {sorted(kernels)}")
        n = views.check_view(a_size, shape, a_strides, a_offset, "ewise_strided (a)")
        views.check_view(b_size, shape, b_strides, b_offset, "ewise_strided (b)")
        if out_size != math.prod(shape):
            raise _mismatch("ewise_strided", {"out": out_size}, math.prod(shape))
        if n == 0:
            return None
        dims, sa, sb = views.simplify_pair(shape, a_strides, b_strides)
        size, tail = _pieces(rt, n, dims[-1], group)
        return kernel, size, views.pack(dims, sa, a_offset), views.pack(dims, sb, b_offset), tail

    plans = _Plans(plan)

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
        p = plans(name, a.size, a_strides, a_offset, b.size, b_strides, b_offset, out.size, shape)
        if p is not None:
            kernel, size, va, vb, tail = p
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
            rt.launch("fill", (_round_up(out.size, local),), (local,), out.mem, float(val), int(out.size))

    def plan_copy(name: str, src_size: int, dst_size: int, shape: tuple, strides: tuple, offset: int) -> tuple | None:
        """How ``compact`` (the view is the source) or ``ewise_setitem`` (the view is the
        destination) runs: nothing, one contiguous device copy, or the view kernel."""
        viewed, other = (src_size, dst_size) if name == "compact" else (dst_size, src_size)
        n = views.check_view(viewed, shape, strides, offset, name)
        if n == 0:
            return None
        if other < n:
            raise ValueError(f"{name}: expected a buffer of at least {n} elements, got {other}")
        dims, steps = views.simplify(shape, strides)
        if len(dims) == 1 and steps[0] == 1:  # a contiguous range: a plain device copy
            return n, None, None
        size, tail = _pieces(rt, n, dims[-1], local)
        return n, size, (views.pack(dims, steps, offset), *tail)

    copy_plans = _Plans(plan_copy)

    def copier(name: str, offset_at: str) -> Callable[..., None]:
        """``compact`` or ``ewise_setitem``; ``offset_at`` names the side the view's offset applies to."""

        def copy(a: Buffer, out: Buffer, shape: tuple, strides: tuple, offset: int) -> None:
            p = copy_plans(name, a.size, out.size, shape, strides, offset)
            if p is None:
                return
            n, size, view = p
            if size is None:
                rt.copy(name, out.mem, a.mem, byte_count=4 * n, **{offset_at: 4 * offset})
            else:
                rt.launch(name, size, (local,), a.mem, out.mem, *view)

        copy.__name__ = copy.__qualname__ = name
        return copy

    def scalar_setitem(size: int, val: float, out: Buffer, shape: tuple, strides: tuple, offset: int) -> None:
        n = views.check_view(out.size, shape, strides, offset, "scalar_setitem")
        if n != size:
            raise ValueError(f"scalar_setitem: size {size} does not match the view's {n} elements (shape {shape})")
        if n:
            dims, steps = views.simplify(shape, strides)
            size, tail = _pieces(rt, n, dims[-1], local)
            rt.launch("scalar_setitem", size, (local,), float(val), out.mem, views.pack(dims, steps, offset), *tail)

    return {
        "to_numpy": to_numpy,
        "from_numpy": from_numpy,
        "fill": fill,
        "compact": copier("compact", "src_offset"),
        "ewise_setitem": copier("ewise_setitem", "dst_offset"),
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
            rt.launch("fill", (_round_up(rows, 64),), (rt.group(64),), out.mem, float(empty), int(rows))
            return
        groups = split_groups(rows, size) if scale is not None and tree_ok else 1
        if groups > 1:  # few long rows: several work-groups per row, then one join
            state = STATE_BYTES[prefix.removesuffix("_view")]
            partial = rt.take(rows * groups * state)
            rt.launch(
                f"{prefix}_split", (rows * groups * REDUCE_LOCAL,), (REDUCE_LOCAL,),
                *args, partial, int(rows), int(size), int(groups),
            )  # fmt: skip
            group = rt.group(64)
            rt.launch(
                f"{prefix}_join", (_round_up(rows, group),), (group,),
                partial, out.mem, int(rows), int(groups), float(scale),
            )  # fmt: skip
            rt.pool.give(partial, rows * groups * state)  # reusable at once: later commands run after these (in order)
            return
        tail = (out.mem, int(rows), int(size)) + (() if scale is None else (float(scale),))
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

        def plan(a_size: int, out_size: int, shape: tuple, strides: tuple, offset: int, reduce_ndim: int) -> tuple:
            views.check_view(a_size, shape, strides, offset, name)
            if not 0 <= reduce_ndim <= len(shape):
                raise ValueError(
                    f"{name}: reduce_ndim must be in [0, {len(shape)}] for shape {shape}, got {reduce_ndim}"
                )
            kept = len(shape) - reduce_ndim  # reduce_ndim 0: every row is one element
            rows, size = math.prod(shape[:kept]), math.prod(shape[kept:])
            if out_size < rows:
                raise ValueError(f"{name}: expected a buffer of at least {rows} elements, got {out_size}")
            # A broadcast (stride-0) reduced axis repeats one value: max ignores it, and a
            # sum multiplies by its length instead of adding it up (a 2 x 1.2e9 broadcast
            # view reduces in no time).
            repeat = math.prod(n for n, st in zip(shape[kept:], strides[kept:], strict=True) if st == 0)
            if size and repeat > 1:
                axes = [i for i in range(len(shape)) if i < kept or strides[i] != 0]
                shape, strides = tuple(shape[i] for i in axes), tuple(strides[i] for i in axes)
                size //= repeat
            view = views.pack(*views.simplify(shape, strides), offset)
            return rows, size, view, float(repeat) if is_sum else 1.0

        plans = _Plans(plan)

        def reduce_view(a: Buffer, out: Buffer, shape: tuple, strides: tuple, offset: int, reduce_ndim: int) -> None:
            rows, size, view, scale = plans(a.size, out.size, shape, strides, offset, reduce_ndim)
            launch(name, (a.mem, view), out, rows, size, empty, scale)

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
            rt.launch("fill", (_round_up(batch * m * p, 64),), (rt.group(64),), out.mem, 0.0, batch * m * p)
            return
        sizes = (int(m), int(n), int(p))
        if rt.matmul_variant == "local":
            grid = (_round_up(p, 64) // 4, _round_up(m, 64) // 4, batch)
            rt.launch("matmul_local", grid, (16, 16, 1), a.mem, b.mem, out.mem, *sizes)
            return
        nib, njb = -(-m // MATMUL_RM), -(-p // 16)
        grid = (_round_up(njb, 4), nib, batch)
        if batch * n * p <= rt.matmul_direct_max:
            rt.launch("matmul_direct", grid, (4, 1, 1), a.mem, b.mem, out.mem, *sizes, int(njb))
            return
        b_packed = rt.take(4 * batch * njb * n * 16)
        rt.launch("pack_b", (_round_up(n, 16), njb, batch), (16, 1, 1), b.mem, b_packed, int(n), int(p))
        rt.launch("matmul_packed", grid, (4, 1, 1), a.mem, b_packed, out.mem, *sizes, int(njb))
        rt.pool.give(b_packed, 4 * batch * njb * n * 16)  # reusable at once: later commands run after these (in order)

    def matmul(a: Buffer, b: Buffer, out: Buffer, m: int, n: int, p: int) -> None:
        run(a, b, out, 1, m, n, p)

    def batched_matmul(a: Buffer, b: Buffer, out: Buffer, batch: int, m: int, n: int, p: int) -> None:
        run(a, b, out, batch, m, n, p)

    return {"matmul": matmul, "batched_matmul": batched_matmul}


def _adam_scalars(lr: float, beta1: float, beta2: float, eps: float, weight_decay: float, t: int) -> tuple:
    """The kernel's scalars: the bias corrections as factors 1/(1 - beta^t), in double."""
    return lr, beta1, beta2, eps, weight_decay, 1.0 / (1.0 - beta1**t), 1.0 / (1.0 - beta2**t)


# The fused optimiser steps (docs/backends.md §3) as data: kernel -> (the ABI's buffer
# operands, the kernel's scalars from the ABI's). Each is called as
# ``name(*buffers, size, *scalars)`` and launches once over ``size`` elements.
_UPDATES: dict[str, tuple[tuple[str, ...], Callable[..., tuple]]] = {
    "sgd_update": (("w", "g", "u"), lambda lr, momentum, weight_decay: (lr, momentum, weight_decay)),
    "adam_update": (("w", "g", "m", "v"), _adam_scalars),
}


def _optimisers(rt: Runtime) -> dict[str, Any]:
    local = rt.group(_EWISE_LOCAL)

    def fused(name: str, operands: tuple[str, ...], scalars: Callable[..., tuple]) -> Callable[..., None]:
        count = len(operands)

        def update(*args: Any) -> None:
            buffers, size = args[:count], args[count]
            check_sizes(name, size, **dict(zip(operands, buffers, strict=True)))
            if size:
                values = [float(x) for x in scalars(*args[count + 1 :])]
                rt.launch(name, (_round_up(size, local),), (local,), *(b.mem for b in buffers), int(size), *values)

        update.__name__ = update.__qualname__ = name
        return update

    return {name: fused(name, *row) for name, row in _UPDATES.items()}


def _norms(rt: Runtime) -> dict[str, Any]:
    """BatchNorm forward and backward (cl/norm.cl): a pass per column for the sums, then
    one elementwise pass; 2 launches each instead of about a dozen composed ops."""
    local, column_group = rt.group(_EWISE_LOCAL), rt.group(64)

    def two_passes(
        name: str,
        rows: int,
        channels: int,
        block: dict[str, Buffer],
        column: dict[str, Buffer],
        columns_pass: tuple,
        elements_pass: tuple,
    ) -> None:
        """Check the ``(rows, channels)`` and ``(channels,)`` operands, then launch
        ``columns_pass`` = (kernel, *args) with a work-item per channel and
        ``elements_pass`` = (kernel, *args) with a work-item per element."""
        check_sizes(name, rows * channels, **block)
        check_sizes(name, channels, **column)
        if rows < 1:
            raise ValueError(f"{name}: expected rows >= 1, got {rows}")
        if channels:
            rt.launch(columns_pass[0], (_round_up(channels, column_group),), (column_group,), *columns_pass[1:])
            n = rows * channels
            rt.launch(elements_pass[0], (_round_up(n, local),), (local,), *elements_pass[1:])

    def batchnorm_forward(
        x: Buffer,
        weight: Buffer,
        bias: Buffer,
        out: Buffer,
        xhat: Buffer,
        mean: Buffer,
        var: Buffer,
        inv_std: Buffer,
        rows: int,
        channels: int,
        eps: float,
    ) -> None:
        rows, channels = int(rows), int(channels)
        two_passes(
            "batchnorm_forward", rows, channels, {"x": x, "out": out, "xhat": xhat},
            {"weight": weight, "bias": bias, "mean": mean, "var": var, "inv_std": inv_std},
            ("batchnorm_stats", x.mem, mean.mem, var.mem, inv_std.mem, rows, channels, float(eps)),
            ("batchnorm_apply", x.mem, weight.mem, bias.mem, mean.mem, inv_std.mem, out.mem, xhat.mem,
             rows * channels, channels),
        )  # fmt: skip

    def batchnorm_backward(
        g: Buffer,
        xhat: Buffer,
        weight: Buffer,
        inv_std: Buffer,
        dx: Buffer,
        dweight: Buffer,
        dbias: Buffer,
        rows: int,
        channels: int,
    ) -> None:
        rows, channels = int(rows), int(channels)
        two_passes(
            "batchnorm_backward", rows, channels, {"g": g, "xhat": xhat, "dx": dx},
            {"weight": weight, "inv_std": inv_std, "dweight": dweight, "dbias": dbias},
            ("batchnorm_grad_sums", g.mem, xhat.mem, dweight.mem, dbias.mem, rows, channels),
            ("batchnorm_grad_input", g.mem, xhat.mem, weight.mem, inv_std.mem, dweight.mem, dbias.mem, dx.mem,
             rows * channels, rows, channels),
        )  # fmt: skip

    return {"batchnorm_forward": batchnorm_forward, "batchnorm_backward": batchnorm_backward}


def _softmax_losses(rt: Runtime) -> dict[str, Any]:
    """The fused softmax cross-entropy and its adjoint (cl/softmax_loss.cl), a work-item
    per row. The labels are checked on the host first (the ABI: a bad label raises
    before anything is written); labels uploaded from NumPy are read from their host
    copy, so the check does not wait for the queue."""
    group = rt.group(64)

    def check(name: str, logits: Buffer, labels: Buffer, rows: int, classes: int) -> None:
        check_class_labels(name, logits, labels, rows, classes, lambda: rt.read(labels, (rows,), (1,), 0))

    def softmax_cross_entropy(logits: Buffer, labels: Buffer, out: Buffer, rows: int, classes: int) -> None:
        check("softmax_cross_entropy", logits, labels, rows, classes)
        check_sizes("softmax_cross_entropy", rows, out=out)
        if rows:
            rt.launch(
                "softmax_cross_entropy",
                (_round_up(rows, group),),
                (group,),
                logits.mem,
                labels.mem,
                out.mem,
                int(rows),
                int(classes),
                reads=labels.mem,  # the backward's label check then reads the host copy too
            )

    def softmax_cross_entropy_backward(
        logits: Buffer, labels: Buffer, out_grad: Buffer, dlogits: Buffer, rows: int, classes: int
    ) -> None:
        check("softmax_cross_entropy_backward", logits, labels, rows, classes)
        check_sizes("softmax_cross_entropy_backward", rows, out_grad=out_grad)
        check_sizes("softmax_cross_entropy_backward", rows * classes, dlogits=dlogits)
        if rows:
            rt.launch(
                "softmax_cross_entropy_backward",
                (_round_up(rows, group),),
                (group,),
                logits.mem,
                labels.mem,
                out_grad.mem,
                dlogits.mem,
                int(rows),
                int(classes),
                reads=labels.mem,
            )

    return {
        "softmax_cross_entropy": softmax_cross_entropy,
        "softmax_cross_entropy_backward": softmax_cross_entropy_backward,
    }
