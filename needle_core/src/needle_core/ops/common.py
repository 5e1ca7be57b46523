"""Helpers shared by the op families: scalars, axes, broadcasting, operand alignment.

Everything here runs only on slow paths (shapes, dtypes or devices differ) or once
per op construction, keeping the equal-shape hot path free of validation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend_ndarray as nd
from ..autograd import Tensor, TensorOp
from ..backend_ndarray import NDArray
from ..backend_ndarray._shapes import normalize_axes, normalize_axis  # noqa: F401 - the ops' axis rule


def as_scalar(value: Any) -> float:
    """A Python float from a Python/NumPy scalar or size-1 array (scalars never promote)."""
    if type(value) is float:
        return value
    if isinstance(value, (int, float, np.generic)):
        return float(value)
    if isinstance(value, (np.ndarray, NDArray)) and value.size == 1:
        host = value if isinstance(value, np.ndarray) else value.numpy()
        return float(host.reshape(-1)[0])
    raise TypeError(
        f"expected a real scalar (int, float, NumPy scalar or size-1 array), got {type(value).__name__}; "
        "combine Tensors with Tensor ops instead"
    )


# Memo tables for the per-op shape arithmetic: a program uses few distinct shapes, so
# each lookup replaces a Python loop. Bounded, and only valid results are stored.
_MEMO_LIMIT = 4096
_BROADCAST_MEMO: dict[tuple[tuple[int, ...], tuple[int, ...]], tuple[int, ...]] = {}
_UNBROADCAST_MEMO: dict[tuple[tuple[int, ...], tuple[int, ...]], tuple[int, ...]] = {}
_BROADCAST_VIEW_MEMO: dict[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], bool, int]] = {}


def _remember(memo: dict, key: Any, value: Any) -> None:
    if len(memo) < _MEMO_LIMIT:
        memo[key] = value


class AxesOp(TensorOp):
    """An op over ``axes`` (None: every axis); ``what`` names it in axis errors."""

    what = "axes"

    def __init__(self, axes: Any = None) -> None:
        self.axes = axes

    def _axes(self, ndim: int) -> tuple[int, ...]:
        return normalize_axes(self.axes, ndim, self.what)


def broadcast_shapes(shape_a: tuple[int, ...], shape_b: tuple[int, ...], what: str) -> tuple[int, ...]:
    """NumPy's broadcast of two shapes; a clear error naming both when impossible."""
    ndim = max(len(shape_a), len(shape_b))
    pa = (1,) * (ndim - len(shape_a)) + tuple(shape_a)
    pb = (1,) * (ndim - len(shape_b)) + tuple(shape_b)
    out = []
    for x, y in zip(pa, pb, strict=False):
        if x != y and x != 1 and y != 1:
            raise ValueError(
                f"{what}: shapes {tuple(shape_a)} and {tuple(shape_b)} cannot be broadcast together "
                "(trailing dimensions must be equal or 1)"
            )
        out.append(y if x == 1 else x)
    return tuple(out)


def broadcast_array(a: NDArray, shape: tuple[int, ...]) -> NDArray:
    """View ``a`` with NumPy broadcasting to ``shape`` (leading axes added as needed);
    ``shape`` must be a broadcast of ``a.shape`` (``broadcast_shapes`` checked it)."""
    in_shape = a.shape
    if in_shape == shape:
        return a
    key = (in_shape, a.strides, shape)
    known = _BROADCAST_VIEW_MEMO.get(key)  # a bias is broadcast the same way every step
    if known is None:
        lead = len(shape) - len(in_shape)
        # one strided view, any layout: stride 0 on new and stretched axes
        strides = (0,) * lead + tuple(
            [s if n == shape[lead + i] else 0 for i, (n, s) in enumerate(zip(in_shape, a.strides, strict=True))]
        )
        # a stretched axis repeats elements: never compact (else let the view decide)
        stretched = any(s == 0 and n > 1 for n, s in zip(shape, strides, strict=True))
        known = (strides, not stretched, math.prod(shape))
        _remember(_BROADCAST_VIEW_MEMO, key, known)
    strides, may_be_compact, size = known
    if may_be_compact:
        return a._view(shape, strides, a._offset)
    out = a._view(shape, strides, a._offset, False)
    out.size = size  # (_view with a known layout keeps the source's size)
    return out


def check_same_device(a: NDArray, b: NDArray, what: str) -> None:
    if a.device is not b.device and a.device != b.device:
        raise ValueError(
            f"{what}: operands are on different devices, {str(a.device)!r} and {str(b.device)!r}; "
            "move one first, e.g. Tensor(x, device=other.device)"
        )


def align(a: NDArray, b: NDArray, what: str) -> tuple[NDArray, NDArray]:
    """Same device (else an error), NumPy dtype promotion, NumPy broadcasting."""
    check_same_device(a, b, what)
    if a.dtype != b.dtype:
        a, b = nd.promote(a, b)
    if a.shape != b.shape:
        key = (a.shape, b.shape)
        shape = _BROADCAST_MEMO.get(key)
        if shape is None:
            shape = broadcast_shapes(a.shape, b.shape, what)
            _remember(_BROADCAST_MEMO, key, shape)
        a, b = broadcast_array(a, shape), broadcast_array(b, shape)
    return a, b


def unbroadcast(grad: Tensor, shape: Sequence[int]) -> Tensor:
    """Sum ``grad`` over the axes broadcasting added to an input of ``shape``."""
    shape = tuple(shape)
    gshape = grad.shape
    if gshape == shape:
        return grad
    key = (gshape, shape)
    axes = _UNBROADCAST_MEMO.get(key)
    if axes is None:
        lead = len(gshape) - len(shape)
        axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and gshape[i + lead] != 1)
        _remember(_UNBROADCAST_MEMO, key, axes)
    if axes and len(gshape) >= len(shape):  # one node summing straight into the input's shape
        return _sum_to(axes, shape)(grad)
    from .reduction import summation
    from .structure import reshape

    if axes:
        grad = summation(grad, axes)
    return reshape(grad, shape) if grad.shape != shape else grad


def _sum_to(axes: tuple[int, ...], shape: tuple[int, ...]) -> TensorOp:
    global _SumTo
    if _SumTo is None:  # reduction imports this module
        from .reduction import SumTo as _SumTo
    return _SumTo(axes, shape)


_SumTo: Any = None
