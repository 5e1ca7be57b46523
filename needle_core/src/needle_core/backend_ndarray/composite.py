"""Higher-level array functions: the device's optional kernel when it has one
(``device.<name> is not None``), else a composition of primitive kernels.

The fallbacks here are the reference every optional kernel is checked against
(``optional_kernels_disabled``). docs/backends.md §3 lists the pairs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import numpy as np

from ..device import Device
from ..kernels import ELEMENTWISE_BY_NAME, OPTIONAL_KERNELS
from ._shapes import normalize_axes
from .dtypes import promote
from .ndarray import NDArray, _alloc, _check_device, _from_host, unary_kernel

_prod = math.prod


def _handle(a: NDArray):
    """The compact buffer holding ``a`` (a copy when ``a`` is a view)."""
    return a._handle if a._compact else a._copy()._handle


# -- elementwise: the optional rows of ELEMENTWISE, each with its fallback -------------
def _host_sin(a: NDArray) -> NDArray:
    """sin has no composition of primitives: computed on the host (NumPy), then copied back."""
    with np.errstate(invalid="ignore"):  # sin(inf) = NaN quietly, as in C
        return _from_host(np.sin(a.numpy()), a.device, a.dtype)


#: kernel -> the composition of primitive kernels used when a device lacks it. The
#: conformance suite checks each optional kernel a device has against its entry.
FALLBACKS: dict[str, Callable[..., NDArray]] = {
    "ewise_neg": lambda a: a._binary(-1.0, "ewise_mul", "scalar_mul"),
    "ewise_power": lambda a, b: (b * a.log()).exp(),  # NaN for negative bases
    "ewise_sqrt": lambda a: a._binary(0.5, "ewise_power", "scalar_power"),
    "ewise_relu": lambda a: a._binary(0.0, "ewise_maximum", "scalar_maximum"),
    "ewise_sigmoid": lambda a: 1.0 / (neg(a).exp() + 1.0),
    "ewise_sin": _host_sin,
}


def elementwise(kernel: str) -> Callable[..., NDArray]:
    """The NDArray function of one unary or binary ELEMENTWISE row: the device's kernel
    (a required row), or the kernel when the device has it and else ``FALLBACKS[kernel]``."""
    row = ELEMENTWISE_BY_NAME[kernel]
    scalar = kernel.replace("ewise_", "scalar_")
    if row.required:
        return (lambda a: a._unary(kernel)) if row.kind == "unary" else (lambda a, b: a._binary(b, kernel, scalar))
    fallback = FALLBACKS[kernel]  # every optional row has one (a test checks)
    if row.kind == "unary":

        def unary(a: NDArray) -> NDArray:
            dev = a.device
            fn = getattr(dev, kernel)  # one lookup: the kernel, or None for the fallback
            if fn is None:
                return fallback(a)
            return unary_kernel(a, fn)

        function = unary
    else:

        def binary(a: NDArray, b: NDArray) -> NDArray:
            return a._binary(b, kernel, scalar) if getattr(a.device, kernel) is not None else fallback(a, b)

        function = binary
    function.__name__ = function.__qualname__ = kernel.removeprefix("ewise_")
    return function


neg = elementwise("ewise_neg")
power = elementwise("ewise_power")
power.__doc__ = "Elementwise ``a ** b``; the fallback ``exp(b * log(a))`` is NaN for negative bases."
sqrt = elementwise("ewise_sqrt")
relu = elementwise("ewise_relu")
sigmoid = elementwise("ewise_sigmoid")
sin = elementwise("ewise_sin")


# -- matmul --------------------------------------------------------------------------
def matmul(a: NDArray, b: NDArray) -> NDArray:
    """``a @ b`` for operands of 2 or more dims; leading (batch) axes broadcast as in NumPy."""
    if not isinstance(b, NDArray):
        raise TypeError(f"matmul: expected an NDArray right operand, got {type(b).__name__}")
    if b.device is not a.device:
        _check_device(a, b)
    if a.dtype != b.dtype:
        a, b = promote(a, b)
    if len(a.shape) < 2 or len(b.shape) < 2 or a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not multiply; expected (..., m, n) @ (..., n, p)")
    dev, dtype = a.device, a.dtype
    (m, n), p = a.shape[-2:], b.shape[-1]
    if len(a.shape) == 2 and len(b.shape) == 2:
        out = _alloc((m, p), dev, dtype)
        if not (a._compact and b._compact) and dev.matmul_t is not None:
            # a backward pass multiplies by transposed views (x^T g, g W^T): the kernel reads them
            ta, tb = _transposed(a), _transposed(b)
            if (ta or a._compact) and (tb or b._compact):
                dev.matmul_t(a._handle, b._handle, out._handle, m, n, p, ta, tb)
                return out
        dev.matmul(_handle(a), _handle(b), out._handle, m, n, p)
        return out
    try:
        batch = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    except ValueError:
        raise ValueError(f"matmul: the batch axes of shapes {a.shape} and {b.shape} do not broadcast") from None
    count = _prod(batch)
    out = _alloc(batch + (m, p), dev, dtype)
    a_full = a.broadcast_to(batch + (m, n)).compact()
    if len(b.shape) == 2:  # one right operand: fold the batch into the rows
        dev.matmul(a_full._handle, _handle(b), out._handle, count * m, n, p)
        return out
    b_full = b.broadcast_to(batch + (n, p)).compact()
    if dev.batched_matmul is not None:
        dev.batched_matmul(a_full._handle, b_full._handle, out._handle, count, m, n, p)
        return out
    # fallback: one matmul per batch entry, through compact scratch buffers
    a_i, b_i, out_i = _alloc((m, n), dev, dtype), _alloc((n, p), dev, dtype), _alloc((m, p), dev, dtype)
    for i in range(count):
        dev.compact(a_full._handle, a_i._handle, (m, n), (n, 1), i * m * n)
        dev.compact(b_full._handle, b_i._handle, (n, p), (p, 1), i * n * p)
        dev.matmul(a_i._handle, b_i._handle, out_i._handle, m, n, p)
        dev.ewise_setitem(out_i._handle, out._handle, (m, p), (p, 1), i * m * p)
    return out


def _transposed(a: NDArray) -> bool:
    """Whether the 2-D ``a`` is the transpose of a whole compact buffer (``x.T``)."""
    rows, cols = a.shape
    return a.strides == (1, rows) and a._offset == 0 and a._handle.size == rows * cols


# -- reductions ----------------------------------------------------------------------
def logsumexp(a: NDArray, axes: int | Iterable[int] | None = None, keepdims: bool = False) -> NDArray:
    """Stable ``log(sum(exp(a)))`` over ``axes`` (None: all); an all ``-inf`` slice gives ``-inf``."""
    shape, ndim = a.shape, len(a.shape)
    axes = normalize_axes(axes, ndim, "logsumexp", shape)
    kept = tuple(i for i in range(ndim) if i not in axes)
    keep_shape = tuple(1 if i in axes else n for i, n in enumerate(shape))
    out_shape = keep_shape if keepdims else tuple(shape[i] for i in kept)
    reduce_size = _prod(shape[i] for i in axes)
    if reduce_size == 0:
        raise ValueError(f"logsumexp over an empty slice (shape {shape}, axes {axes}) is undefined")
    dev = a.device
    if dev.logsumexp is not None:
        view = a if kept + axes == tuple(range(ndim)) else a.permute(kept + axes)
        out = _alloc(out_shape, dev, a.dtype)
        dev.logsumexp(_handle(view), out._handle, reduce_size)
        return out
    # Shift by the max, clamped to finite values: an all -inf slice then gives
    # log(0) + shift = -inf instead of NaN from (-inf) - (-inf).
    big = float(np.finfo(a.dtype).max)
    shift = neg(neg(a.max(axes, keepdims=True).maximum(-big)).maximum(-big))
    total = (a - shift.broadcast_to(shape)).exp().sum(axes, keepdims=True)
    result = total.log() + shift
    return result if keepdims else result.reshape(out_shape)


# -- convolution ---------------------------------------------------------------------
def conv2d_nhwc(a: NDArray, w: NDArray, stride: int = 1, padding: int = 0) -> NDArray:
    """Convolution of NHWC ``a`` with ``w`` of shape ``(K, K, C_in, C_out)``, zero
    padding on H and W; output ``(N, (H+2p-K)//s+1, (W+2p-K)//s+1, C_out)``."""
    if len(a.shape) != 4 or len(w.shape) != 4 or w.shape[0] != w.shape[1] or a.shape[3] != w.shape[2]:
        raise ValueError(
            f"conv2d_nhwc: expected a of shape (N, H, W, C_in) and w of shape (K, K, C_in, C_out), "
            f"got {a.shape} and {w.shape}"
        )
    if w.shape[0] == 0:
        raise ValueError(f"conv2d_nhwc: the kernel {w.shape} is empty; a kernel is at least 1x1")
    if stride < 1 or padding < 0:
        raise ValueError(f"conv2d_nhwc: expected stride >= 1 and padding >= 0, got {stride} and {padding}")
    if w.device is not a.device:
        _check_device(a, w)
    if a.dtype != w.dtype:
        a, w = promote(a, w)
    pad = padding
    dev = a.device
    if pad and dev.conv2d_nhwc_padded is not None:  # the device pads (and drops dead taps) itself
        return _conv2d_padded(a, w, stride, pad)
    if pad:
        a, w = _live_taps(a, w, stride, pad)
    else:
        a = a.compact()
    n, h, wd, c = a.shape
    k, c_out = w.shape[0], w.shape[3]
    ho, wo = (h - w.shape[0]) // stride + 1, (wd - w.shape[1]) // stride + 1
    if h < w.shape[0] or wd < w.shape[1]:
        raise ValueError(f"conv2d_nhwc: a {k}x{k} kernel does not fit a padded input of shape {a.shape}")
    w = w.compact()
    if dev.conv2d_nhwc is not None:
        out = _alloc((n, ho, wo, c_out), dev, a.dtype)
        dev.conv2d_nhwc(a._handle, w._handle, out._handle, a.shape, w.shape, stride)
        return out
    # im2col: a strided view of every K x K window (no copy), compacted once
    s_n, s_h, s_w, s_c = a.strides
    kh, kw = w.shape[0], w.shape[1]
    cols = a.as_strided((n, ho, wo, kh, kw, c), (s_n, s_h * stride, s_w * stride, s_h, s_w, s_c)).compact()
    out = matmul(cols.reshape((n * ho * wo, kh * kw * c)), w.reshape((kh * kw * c, c_out)))
    return out.reshape((n, ho, wo, c_out))


def _conv2d_padded(a: NDArray, w: NDArray, stride: int, pad: int) -> NDArray:
    """The device's ``conv2d_nhwc_padded``: no padded copy of ``a`` made here."""
    n, h, wd, _ = a.shape
    k, c_out = w.shape[0], w.shape[3]
    if h + 2 * pad < k or wd + 2 * pad < k:
        raise ValueError(f"conv2d_nhwc: a {k}x{k} kernel does not fit the input {a.shape} padded by {pad}")
    a, w = a.compact(), w.compact()
    out = _alloc((n, (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1, c_out), a.device, a.dtype)
    a.device.conv2d_nhwc_padded(a._handle, w._handle, out._handle, a.shape, w.shape, stride, pad)
    return out


def _live_taps(a: NDArray, w: NDArray, stride: int, pad: int) -> tuple[NDArray, NDArray]:
    """``a`` zero-padded for ``w`` (both compact), without the kernel taps that only ever
    meet padding: a 3x3 kernel over a 1x1 image padded by 1 is its centre tap, a 1x1
    kernel (ResNet9's last convs spend 8/9 of their multiply-adds on padding otherwise).
    The padding shrinks with the kernel, and the input keeps exactly the rows and
    columns the same output grid reads."""
    k = w.shape[0]
    spans = []
    plain = ((0, 0), (pad, pad), (pad, pad), (0, 0))
    if min(a.shape[1:3]) + 2 * pad < k:
        return a.pad(plain), w  # the caller reports the misfit
    for extent in a.shape[1:3]:
        out = (extent + 2 * pad - k) // stride + 1
        lo, hi = max(0, pad - (out - 1) * stride), min(k, extent + pad)
        end = (out - 1) * stride + hi - pad  # one past the last input row a window reads
        spans.append((lo, hi, pad - lo, end))
    (lo_h, hi_h, top, end_h), (lo_w, hi_w, left, end_w) = spans
    # the kernel ABI takes square (K, K, C_in, C_out) kernels, so only a square live
    # region is cut out (a square image, as in ResNet9, always gives one)
    square = hi_h - lo_h == hi_w - lo_w
    if (lo_h, hi_h, lo_w, hi_w) != (0, k, 0, k) and lo_h < hi_h and lo_w < hi_w and square:
        w = w[lo_h:hi_h, lo_w:hi_w, :, :].compact()
        n, h, wd, _ = a.shape
        if end_h < h or end_w < wd:
            a = a[:, : min(end_h, h), : min(end_w, wd), :]
        pads = ((0, 0), (top, max(0, end_h - h)), (left, max(0, end_w - wd)), (0, 0))
    else:  # nothing to drop, or no live tap at all (a zero output either way)
        pads = plain
    return a.pad(pads), w


# -- layout copies ---------------------------------------------------------------------
def flip(a: NDArray, axes: int | Iterable[int] | None = None) -> NDArray:
    """A compact copy of ``a`` reversed along ``axes``.

    Kernels take non-negative strides only (docs/backends.md §1), so a reversal is
    one strided copy per index of each flipped axis, through one scratch slab.
    """
    axes = normalize_axes(axes, len(a.shape), "flip", a.shape)
    dev, src = a.device, a
    for ax in axes:
        length = a.shape[ax]
        if length <= 1 or not a.size:
            continue
        slab_shape = a.shape[:ax] + (1,) + a.shape[ax + 1 :]
        slab = _alloc(slab_shape, dev, a.dtype)
        dst = _alloc(a.shape, dev, a.dtype)
        for i in range(length):
            dev.compact(src._handle, slab._handle, slab_shape, src.strides, src._offset + i * src.strides[ax])
            dev.ewise_setitem(slab._handle, dst._handle, slab_shape, dst.strides, (length - 1 - i) * dst.strides[ax])
        src = dst
    return a._copy() if src is a else src


# -- testing aid -----------------------------------------------------------------------
@contextmanager
def optional_kernels_disabled(device: Device) -> Iterator[Device]:
    """Temporarily set every optional kernel of ``device`` to None, so the ops above
    take their fallback paths (the suite compares the two)."""
    saved = {name: device.__dict__.get(name) for name in OPTIONAL_KERNELS}
    try:
        for name in saved:
            device.__dict__[name] = None
        yield device
    finally:
        device.__dict__.update(saved)
