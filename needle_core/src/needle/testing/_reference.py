"""Shared helpers of the conformance suite: NumPy references, tolerances and
hypothesis strategies for shapes and strided views (element strides/offsets)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from needle_core.views import compact_strides
from numpy.lib.stride_tricks import as_strided

#: Modest example counts: the suite runs on every backend, on small machines.
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: docs/api.md "Numerical agreement": elementwise rtol 1e-5 (atol for values near 0).
EWISE_TOL = {"rtol": 1e-5, "atol": 1e-6}


def dtypes_of(device: Any) -> tuple[str, ...]:
    return tuple(getattr(device, "dtypes", ("float32",)))


def reduction_tol(length: int, scale: float = 1.0, dtype: str = "float32") -> dict[str, float]:
    """Tolerance of a sum of ``length`` terms of magnitude ``scale``: the rounding
    error of a float sum grows with its length (any summation order is allowed)."""
    eps = float(np.finfo(dtype).eps)
    return {"rtol": 1e-5, "atol": 4.0 * eps * max(1, length) * max(scale, 1e-30)}


# -- device buffers ---------------------------------------------------------------------
def alloc(device: Any, size: int, dtype: str = "float32") -> Any:
    """A buffer of ``size`` elements (dtype passed only when not float32, per the ABI)."""
    return device.Array(size) if dtype == "float32" else device.Array(size, dtype)


def to_device(device: Any, host: np.ndarray) -> Any:
    """A new buffer holding the C-contiguous copy of ``host``."""
    host = np.ascontiguousarray(host)
    buf = alloc(device, host.size, host.dtype.name)
    device.from_numpy(host, buf)
    return buf


def read(device: Any, buf: Any, shape: tuple[int, ...]) -> np.ndarray:
    """A compact buffer as a NumPy array of ``shape``."""
    return np.asarray(device.to_numpy(buf, tuple(shape), compact_strides(tuple(shape)), 0))


def np_view(flat: np.ndarray, shape: tuple, strides: tuple, offset: int) -> np.ndarray:
    """NumPy's own view of element ``(shape, strides, offset)`` over a 1-D array."""
    item = flat.itemsize
    return as_strided(flat[offset:], shape=shape, strides=tuple(s * item for s in strides), writeable=False)


def extent(shape: tuple, strides: tuple, offset: int) -> int:
    """Number of buffer elements a view needs (its last element + 1)."""
    if math.prod(shape) == 0:
        return offset
    return offset + sum((n - 1) * s for n, s in zip(shape, strides, strict=True)) + 1


# -- hypothesis strategies -----------------------------------------------------------------
def shapes(min_ndim: int = 1, max_ndim: int = 4, min_side: int = 1, max_side: int = 6) -> st.SearchStrategy:
    return st.lists(st.integers(min_side, max_side), min_size=min_ndim, max_size=max_ndim).map(tuple)


seeds = st.integers(0, 2**32 - 1)


@st.composite
def strided_views(draw: Any, max_ndim: int = 4, max_side: int = 5) -> tuple[tuple, tuple, int, int]:
    """Any readable view: random non-negative strides (0 = broadcast axis, possibly
    overlapping) and offset. Returns ``(shape, strides, offset, buffer_size)``."""
    shape = draw(shapes(1, max_ndim, 1, max_side))
    strides = tuple(draw(st.integers(0, 9)) for _ in shape)
    offset = draw(st.integers(0, 7))
    slack = draw(st.integers(0, 3))
    return shape, strides, offset, extent(shape, strides, offset) + slack


@st.composite
def disjoint_views(draw: Any, max_ndim: int = 4, max_side: int = 6) -> tuple[tuple, tuple, int, tuple]:
    """A writable view whose elements are distinct: slices with positive steps of a
    compact base array, then a permutation of the axes. Returns
    ``(shape, strides, offset, base_shape)``."""
    base = draw(shapes(1, max_ndim, 1, max_side))
    base_strides = compact_strides(base)
    shape, strides, offset = [], [], 0
    for n, stride in zip(base, base_strides, strict=True):
        start = draw(st.integers(0, n - 1))
        step = draw(st.integers(1, 3))
        length = draw(st.integers(1, (n - 1 - start) // step + 1))
        shape.append(length)
        strides.append(stride * step)
        offset += start * stride
    order = draw(st.permutations(range(len(base))))
    return tuple(shape[i] for i in order), tuple(strides[i] for i in order), offset, base


# -- NumPy references for the composed NDArray functions -------------------------------------
def np_logsumexp(x: np.ndarray, axes: Any = None, keepdims: bool = False) -> np.ndarray:
    """Stable reference in float64; ``-inf`` for an all ``-inf`` slice."""
    x = x.astype(np.float64)
    m = np.max(x, axis=axes, keepdims=True)
    shift = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x - shift), axis=axes, keepdims=True)) + shift
    return out if keepdims else np.squeeze(out, axis=axes) if axes is not None else out.reshape(())


def np_conv_nhwc(a: np.ndarray, w: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Direct convolution by windows, in float64."""
    a = np.pad(a.astype(np.float64), ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    n, h, wd, _ = a.shape
    k = w.shape[0]
    ho, wo = (h - k) // stride + 1, (wd - k) // stride + 1
    out = np.zeros((n, ho, wo, w.shape[3]))
    for i in range(k):
        for j in range(k):
            window = a[:, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride, :]
            out += window @ w[i, j].astype(np.float64)
    return out


def np_conv_nhwc_grad_input(g: np.ndarray, w: np.ndarray, stride: int, padding: int,
                            size: tuple[int, int]) -> np.ndarray:
    """The input adjoint of ``np_conv_nhwc`` for the output adjoint ``g``, in float64:
    each window's ``g @ w^T`` added back onto the padded input, then cropped."""
    n, ho, wo, _ = g.shape
    k, c = w.shape[0], w.shape[2]
    h, wd = size[0] + 2 * padding, size[1] + 2 * padding
    out = np.zeros((n, h, wd, c))
    g64, w64 = g.astype(np.float64), w.astype(np.float64)
    for i in range(k):
        for j in range(k):
            rows, cols = slice(i, i + stride * (ho - 1) + 1, stride), slice(j, j + stride * (wo - 1) + 1, stride)
            out[:, rows, cols, :] += g64 @ w64[i, j].T
    return out[:, padding : padding + size[0], padding : padding + size[1], :]


def np_conv_nhwc_grad_weight(x: np.ndarray, g: np.ndarray, k: int, stride: int, padding: int) -> np.ndarray:
    """The kernel adjoint of ``np_conv_nhwc`` for the output adjoint ``g``, in float64."""
    a = np.pad(x.astype(np.float64), ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    n, ho, wo, c_out = g.shape
    g2 = g.astype(np.float64).reshape(-1, c_out)
    out = np.zeros((k, k, x.shape[3], c_out))
    for i in range(k):
        for j in range(k):
            window = a[:, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride, :]
            out[i, j] = window.reshape(-1, x.shape[3]).T @ g2
    return out
