"""The ``cuda:N`` kernel namespace: the ABI of docs/backends.md over one CudaRuntime.

``build_namespace(runtime)`` returns a dict of the primitive and optional kernels.
The elementwise family comes from needle-core's table (one wrapper per row); the
rest are thin wrappers that check sizes, pick a launch configuration and launch.
"""

from __future__ import annotations

from collections.abc import Callable
from math import prod
from typing import Any

import numpy as np
from needle_core.kernels import ELEMENTWISE, REDUCTIONS, ElementwiseKernel
from needle_core.views import check_sizes, check_view, coalesce, compact_strides, is_contiguous

from . import layout
from .runtime import CudaRuntime, elementwise_signature

F32 = 4  # bytes per element
MAX_GRID_YZ = 65535  # gridDim.y/z limit: larger matmuls are launched in chunks


class CudaBuffer:
    """A device buffer: ``size`` float32 elements from the runtime's pool."""

    __slots__ = ("size", "_alloc", "_ptr")
    dtype = "float32"
    runtime: CudaRuntime  # set on the per-device subclass

    def __init__(self, size: int, dtype: str = "float32") -> None:
        if dtype != "float32":
            raise TypeError(f"the cuda device holds float32 only; asked for {dtype!r}. Use dtype='float32'")
        size = int(size)
        if size < 0:
            raise ValueError(f"buffer size must be >= 0, got {size}")
        self.size = size
        self._alloc = self.runtime.allocate(size * F32)
        self._ptr = int(self._alloc)

    def ptr(self) -> int:
        return self._ptr

    def __repr__(self) -> str:
        return f"CudaBuffer(size={self.size}, ptr={self._ptr:#x}, device=cuda:{self.runtime.index})"


def _dims_fit(what: str, **dims: int) -> None:
    """The GEMM/im2col kernels take matrix dimensions as 32-bit ints (their flat
    indices are 64-bit): refuse a dimension they cannot represent."""
    for name, value in dims.items():
        if value >= layout.INT32_LIMIT:
            raise ValueError(
                f"{what}: {name} = {value} exceeds the kernel's 32-bit dimension limit ({layout.INT32_LIMIT - 1}); "
                "split the operation along that axis"
            )


def build_namespace(rt: CudaRuntime) -> dict[str, Any]:
    """Every kernel for the GPU behind ``rt``."""
    ns: dict[str, Any] = {}
    Array = type(f"CudaBuffer{rt.index}", (CudaBuffer,), {"__slots__": (), "runtime": rt})
    ns["Array"] = Array
    grid_1d = rt.grid_1d

    # -- host transfers -------------------------------------------------------------
    compact_into = _make_compact(rt)

    def to_numpy(a: CudaBuffer, shape, strides, offset) -> np.ndarray:
        shape = tuple(int(s) for s in shape)
        n = check_view(a.size, shape, strides, offset, "to_numpy")
        host = np.empty(shape, dtype=np.float32)
        if n == 0:
            return host
        cshape, cstrides = coalesce(shape, strides)
        if is_contiguous(cshape, cstrides):
            rt.dtoh(host, a._ptr + offset * F32)
        else:
            tmp = Array(n)
            compact_into(a, tmp, shape, strides, offset)
            rt.dtoh(host, tmp._ptr)
        return host

    def from_numpy(array: np.ndarray, out: CudaBuffer) -> None:
        host = np.ascontiguousarray(array, dtype=np.float32)
        if host.size != out.size:
            raise ValueError(f"from_numpy: array has {host.size} elements, the buffer {out.size}; expected equal sizes")
        if host.size:
            rt.htod(out._ptr, host)

    fill_launch = rt.launcher("fill")

    def fill(out: CudaBuffer, val: float) -> None:
        n = out.size
        if n:
            fill_launch(*grid_1d(n), out._ptr, n, float(val))

    ns.update(to_numpy=to_numpy, from_numpy=from_numpy, fill=fill)
    ns.update(_make_views(rt, compact_into))
    ns.update({k.name: _make_elementwise(rt, k) for k in ELEMENTWISE})
    ns.update(_make_reductions(rt, Array, compact_into))
    ns.update(_make_matmuls(rt, Array))
    ns.update(_make_optim(rt))
    ns["synchronize"] = rt.synchronize  # tool hook: benchmarks and the profiler wait for queued kernels
    ns["dlpack_device"] = (2, rt.index)  # tool hook: __dlpack__ exports buffers as kDLCUDA device pointers
    return ns


# -- elementwise family (rendered from the table) -------------------------------------
def _make_elementwise(rt: CudaRuntime, k: ElementwiseKernel) -> Callable[..., None]:
    launch = rt.launcher(k.name, "elementwise", elementwise_signature(k.arity, k.kind == "scalar"))
    grid_1d = rt.grid_1d
    name = k.name

    if k.kind == "unary":
        def unary(a, out):
            n = out.size
            if a.size != n:
                check_sizes(name, n, a=a)
            if n:
                launch(*grid_1d((n + 3) >> 2), a._ptr, out._ptr, n)
        unary.__name__ = name
        return unary
    if k.kind == "scalar":
        def scalar(a, val, out):
            n = out.size
            if a.size != n:
                check_sizes(name, n, a=a)
            if n:
                launch(*grid_1d((n + 3) >> 2), a._ptr, out._ptr, n, float(val))
        scalar.__name__ = name
        return scalar

    def binary(a, b, out):
        n = out.size
        if a.size != n or b.size != n:
            check_sizes(name, n, a=a, b=b)
        if n:
            launch(*grid_1d((n + 3) >> 2), a._ptr, b._ptr, out._ptr, n)
    binary.__name__ = name
    return binary


# -- strided views ----------------------------------------------------------------------
def _make_copy(rt: CudaRuntime, kernel: str, view_is_source: bool) -> Callable[..., None]:
    """``compact`` (the view is the source ``a``) or ``ewise_setitem`` (the view is ``out``)."""
    launch32, launch64 = rt.launcher(f"{kernel}_i32"), rt.launcher(f"{kernel}_i64")

    def copy(a, out, shape, strides, offset) -> None:
        viewed, whole = (a, {"out": out}) if view_is_source else (out, {"a": a})
        n = check_view(viewed.size, shape, strides, offset, kernel)
        check_sizes(kernel, n, **whole)
        if n == 0:
            return
        cshape, cstrides = coalesce(shape, strides)
        if is_contiguous(cshape, cstrides):  # one run of memory: a plain device copy
            src, dst = (a._ptr + offset * F32, out._ptr) if view_is_source else (a._ptr, out._ptr + offset * F32)
            rt.dtod(dst, src, n * F32)
            return
        launch = launch32 if n < layout.INT32_LIMIT else launch64
        launch(*rt.grid_1d(n), a._ptr, out._ptr, *layout.pack_layout(cshape, cstrides), offset, n, len(cshape))

    copy.__name__ = kernel
    return copy


def _make_compact(rt: CudaRuntime) -> Callable[..., None]:
    return _make_copy(rt, "compact", view_is_source=True)


def _make_views(rt: CudaRuntime, compact: Callable[..., None]) -> dict[str, Callable[..., None]]:
    ewise_setitem = _make_copy(rt, "ewise_setitem", view_is_source=False)
    fill32, fill64 = rt.launcher("scalar_setitem_i32"), rt.launcher("scalar_setitem_i64")

    def scalar_setitem(size, val, out, shape, strides, offset) -> None:
        n = check_view(out.size, shape, strides, offset, "scalar_setitem")
        if n != size:
            raise ValueError(f"scalar_setitem: size {size} does not match prod(shape) = {n} for shape {tuple(shape)}")
        if n == 0:
            return
        cshape, cstrides = coalesce(shape, strides)
        launch = fill32 if n < layout.INT32_LIMIT else fill64
        launch(*rt.grid_1d(n), out._ptr, *layout.pack_layout(cshape, cstrides), offset, n, len(cshape), float(val))

    return {"compact": compact, "ewise_setitem": ewise_setitem, "scalar_setitem": scalar_setitem}


# -- reductions over contiguous blocks --------------------------------------------------
def _reduce_strategy(rows: int, size: int) -> str:
    """Which kernel shape suits ``rows`` rows of ``size`` elements (see reduce.cu)."""
    if size < 32:
        return "thread"
    if size >= 4096 or (size >= 512 and rows < 2048):
        return "block"
    return "warp"


def _make_reductions(rt: CudaRuntime, Array: type, compact_into: Callable[..., None]) -> dict[str, Callable[..., None]]:
    WARPS = 256 // 32

    def make(prefix: str, strategies: tuple[str, ...], empty_value: float) -> Callable[..., None]:
        launches = {s: rt.launcher(f"{prefix}_{s}") for s in strategies}

        def reduce(a, out, reduce_size) -> None:
            rows, size = out.size, int(reduce_size)
            check_sizes(prefix, rows * size, a=a)
            if rows == 0:
                return
            if size == 0:  # an empty block: the reduction's identity
                ns_fill(out, empty_value)
                return
            strategy = _reduce_strategy(rows, size)
            if strategy not in launches:
                strategy = "warp"
            if strategy == "thread":
                grid = rt.grid_1d(rows)
            elif strategy == "warp":
                grid = ((min((rows + WARPS - 1) // WARPS, rt.max_blocks), 1, 1), (256, 1, 1))
            else:
                grid = ((min(rows, rt.max_blocks), 1, 1), (256, 1, 1))
            launches[strategy](*grid, a._ptr, out._ptr, rows, size)

        reduce.__name__ = prefix
        return reduce

    fill_launch = rt.launcher("fill")

    def ns_fill(out, val: float) -> None:
        fill_launch(*rt.grid_1d(out.size), out._ptr, out.size, float(val))

    def make_view(op: str, contiguous: Callable[..., None]) -> Callable[..., None]:
        v32, v64 = rt.launcher(f"reduce_{op}_view_i32"), rt.launcher(f"reduce_{op}_view_i64")
        name = f"reduce_{op}_view"

        def reduce_view(a, out, shape, strides, offset, reduce_ndim) -> None:
            shape, strides, k = tuple(int(s) for s in shape), tuple(int(t) for t in strides), int(reduce_ndim)
            if not 1 <= k <= len(shape):
                raise ValueError(f"{name}: reduce_ndim must be in 1..{len(shape)} for shape {shape}, got {k}")
            check_view(a.size, shape, strides, offset, name)
            rows, size = prod(shape[:-k]), prod(shape[-k:])
            check_sizes(name, rows, out=out)
            if rows == 0:
                return
            repeats = prod(n for n, s in zip(shape[-k:], strides[-k:], strict=True) if s == 0 and n > 1)
            if repeats > 1 and size:  # a reduced axis repeating one element (stride 0) is never expanded
                kept = [(n, s) for n, s in zip(shape[-k:], strides[-k:], strict=True) if s or n <= 1] or [(1, 1)]
                shape = shape[:-k] + tuple(n for n, _ in kept)
                strides = strides[:-k] + tuple(s for _, s in kept)
                k, size = len(kept), size // repeats
                if op == "sum":  # a sum over the repeats is the sum times their number
                    reduce_view(a, out, shape, strides, offset, k)
                    scale(out, float(repeats))
                    return
            kept_axes = list(zip(shape[:-k], strides[:-k], strict=True))
            if size and any(s == 0 and n > 1 for n, s in kept_axes):
                # a kept axis repeating one element: reduce the distinct rows once, then repeat them
                distinct = [(n, s) for n, s in kept_axes if s or n <= 1]
                ushape = tuple(n for n, _ in distinct)
                uniq = Array(prod(ushape))
                reduce_view(a, uniq, ushape + shape[-k:], tuple(s for _, s in distinct) + strides[-k:], offset, k)
                ustrides, j, src = compact_strides(ushape), 0, []
                for n, s in kept_axes:
                    if s or n <= 1:
                        src.append(ustrides[j])
                        j += 1
                    else:
                        src.append(0)
                compact_into(uniq, out, shape[:-k], tuple(src), 0)
                return
            if size == 0 or (rows < rt.sm_count * 256 and size > 64):
                # too few outputs to fill the GPU with one thread each: compact the
                # view, then the warp/block-per-row kernels split each row
                tmp = Array(rows * size)
                compact_into(a, tmp, shape, strides, offset)
                contiguous(tmp, out, size)
                return
            kshape, kstrides = coalesce(shape[:-k], strides[:-k])
            rshape, rstrides = coalesce(shape[-k:], strides[-k:])
            launch = v32 if rows * size < layout.INT32_LIMIT and offset < layout.INT32_LIMIT else v64
            launch(*rt.grid_1d(rows), a._ptr, out._ptr, *layout.pack_layout(kshape, kstrides),
                   *layout.pack_layout(rshape, rstrides), offset, rows, size, len(kshape), len(rshape))

        reduce_view.__name__ = name
        return reduce_view

    mul_launch = rt.launcher("scalar_mul", "elementwise", elementwise_signature(2, True))

    def scale(buf, val: float) -> None:  # in place: each thread reads and writes its own element
        mul_launch(*rt.grid_1d((buf.size + 3) >> 2), buf._ptr, buf._ptr, buf.size, val)

    # one contiguous and one view kernel per REDUCTIONS row (an empty block gives its identity)
    contiguous = {r.name: make(r.name, ("thread", "warp", "block"), r.identity) for r in REDUCTIONS}
    return {
        **contiguous,
        **{r.view_name: make_view(r.name.removeprefix("reduce_"), contiguous[r.name]) for r in REDUCTIONS},
        "logsumexp": make("logsumexp", ("warp", "block"), float("-inf")),
    }


# -- matmul family ------------------------------------------------------------------------
def _make_matmuls(rt: CudaRuntime, Array: type) -> dict[str, Callable[..., None]]:
    tiled = rt.launcher("sgemm_tiled16")
    big = rt.launcher("sgemm_128x128")
    im2col = rt.launcher("im2col_nhwc")

    def gemm(a_ptr: int, b_ptr: int, c_ptr: int, batch: int, M: int, K: int, N: int) -> None:
        """C[z] = A[z] @ B[z] for z < batch; compact (M,K), (K,N), (M,N) operands."""
        if batch == 0 or M == 0 or N == 0:
            return
        sA, sB, sC = M * K, K * N, M * N
        tiles = ((M + 127) // 128) * ((N + 127) // 128) * batch
        if tiles * 2 >= rt.sm_count:
            launch, tile, block = big, 128, (256, 1, 1)
        else:
            launch, tile, block = tiled, 16, (16, 16, 1)
        rows_per_launch = MAX_GRID_YZ * tile
        for z0 in range(0, batch, MAX_GRID_YZ):  # chunks keep gridDim.y/z within limits
            nz = min(MAX_GRID_YZ, batch - z0)
            for r0 in range(0, M, rows_per_launch):
                mr = min(rows_per_launch, M - r0)
                grid = ((N + tile - 1) // tile, (mr + tile - 1) // tile, nz)
                launch(
                    grid, block,
                    a_ptr + (z0 * sA + r0 * K) * F32, b_ptr + z0 * sB * F32, c_ptr + (z0 * sC + r0 * N) * F32,
                    sA, sB, sC, mr, K, N,
                )

    def matmul(a, b, out, m, n, p) -> None:
        m, n, p = int(m), int(n), int(p)
        _dims_fit("matmul", m=m, n=n, p=p)
        check_sizes("matmul", m * n, a=a)
        check_sizes("matmul", n * p, b=b)
        check_sizes("matmul", m * p, out=out)
        gemm(a._ptr, b._ptr, out._ptr, 1, m, n, p)

    def batched_matmul(a, b, out, batch, m, n, p) -> None:
        batch, m, n, p = int(batch), int(m), int(n), int(p)
        _dims_fit("batched_matmul", m=m, n=n, p=p)
        check_sizes("batched_matmul", batch * m * n, a=a)
        check_sizes("batched_matmul", batch * n * p, b=b)
        check_sizes("batched_matmul", batch * m * p, out=out)
        gemm(a._ptr, b._ptr, out._ptr, batch, m, n, p)

    def conv2d_nhwc(a, w, out, shape_a, shape_w, stride) -> None:
        N, H, W, C = (int(s) for s in shape_a)
        K, K2, C_in, C_out = (int(s) for s in shape_w)
        stride = int(stride)
        if K != K2 or C_in != C:
            raise ValueError(
                f"conv2d_nhwc: weight shape {tuple(shape_w)} must be (K, K, {C}, C_out) for input {tuple(shape_a)}"
            )
        if stride < 1 or K > H or K > W:
            raise ValueError(
                f"conv2d_nhwc: needs stride >= 1 and K <= H, W; got stride={stride}, K={K}, input {tuple(shape_a)}"
            )
        Ho, Wo = (H - K) // stride + 1, (W - K) // stride + 1
        _dims_fit("conv2d_nhwc", H=H, W=W, C=C, C_out=C_out, stride=stride, rows=N * Ho * Wo, cols=K * K * C)
        check_sizes("conv2d_nhwc", N * H * W * C, a=a)
        check_sizes("conv2d_nhwc", K * K * C * C_out, w=w)
        check_sizes("conv2d_nhwc", N * Ho * Wo * C_out, out=out)
        rows, cols = N * Ho * Wo, K * K * C
        if rows == 0 or C_out == 0:
            return
        total = rows * cols
        col = Array(total)  # pooled scratch: (N*Ho*Wo) x (K*K*C_in)
        im2col(*rt.grid_1d(total), a._ptr, col._ptr, total, H, W, C, K, Ho, Wo, stride)
        gemm(col._ptr, w._ptr, out._ptr, 1, rows, cols, C_out)

    return {"matmul": matmul, "batched_matmul": batched_matmul, "conv2d_nhwc": conv2d_nhwc}


# -- fused optimiser updates ------------------------------------------------------------
def _make_optim(rt: CudaRuntime) -> dict[str, Callable[..., None]]:
    sgd, adam = rt.launcher("sgd_update"), rt.launcher("adam_update")

    def sgd_update(w, g, u, size, lr, momentum, weight_decay) -> None:
        n = int(size)
        check_sizes("sgd_update", n, w=w, g=g, u=u)
        if n:
            sgd(*rt.grid_1d(n), w._ptr, g._ptr, u._ptr, n, float(lr), float(momentum), float(weight_decay))

    def adam_update(w, g, m, v, size, lr, beta1, beta2, eps, weight_decay, t) -> None:
        n = int(size)
        check_sizes("adam_update", n, w=w, g=g, m=m, v=v)
        if n:
            bias1, bias2 = 1.0 - float(beta1) ** t, 1.0 - float(beta2) ** t  # in float64 on the host
            adam(*rt.grid_1d(n), w._ptr, g._ptr, m._ptr, v._ptr, n,
                 float(lr), float(beta1), float(beta2), float(eps), float(weight_decay), bias1, bias2)

    return {"sgd_update": sgd_update, "adam_update": adam_update}
