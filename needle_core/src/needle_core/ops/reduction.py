"""Reductions: summation and max over None, an int or a tuple of axes (axes dropped)."""

from __future__ import annotations

from typing import Any

from ..autograd import Tensor, TensorOp
from ..backend_ndarray import NDArray
from .common import AxesOp, _remember


_KEPT: dict[tuple[tuple[int, ...], tuple[int, ...]], tuple[int, ...]] = {}
_DROPPED: dict[tuple[tuple[int, ...], tuple[int, ...]], tuple[int, ...]] = {}


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    out = _KEPT.get((shape, axes))
    if out is None:
        out = tuple(1 if i in axes else n for i, n in enumerate(shape))
        _remember(_KEPT, (shape, axes), out)
    return out


def _dropped_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    out = _DROPPED.get((shape, axes))
    if out is None:
        out = tuple(n for i, n in enumerate(shape) if i not in axes)
        _remember(_DROPPED, (shape, axes), out)
    return out


def expand_reduced(grad: Tensor, in_shape: tuple[int, ...], axes: tuple[int, ...]) -> Tensor:
    """Broadcast an adjoint of a reduction (reduced axes dropped) back to ``in_shape``."""
    from .structure import broadcast_to, reshape

    kept = _kept_shape(in_shape, axes)
    if grad.shape != kept:
        grad = reshape(grad, kept)
    return broadcast_to(grad, in_shape) if kept != in_shape else grad


class ReductionOp(AxesOp):
    """An op that reduces ``axes`` away: ``reduce`` gets the normalized, non-empty axes and
    the result's shape; with no axis to reduce the result is a copy of ``a``, like NumPy."""

    def compute(self, a: NDArray) -> NDArray:
        axes = self._axes(a.ndim)
        if not axes:
            return a + 0.0
        return self.reduce(a, axes, _dropped_shape(a.shape, axes))

    def reduce(self, a: NDArray, axes: tuple[int, ...], out_shape: tuple[int, ...]) -> NDArray:
        raise NotImplementedError


class Summation(ReductionOp):
    what = "summation"

    def reduce(self, a: NDArray, axes: tuple[int, ...], out_shape: tuple[int, ...]) -> NDArray:
        return a._reduce_to(axes, out_shape, "reduce_sum_view", "reduce_sum")

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        shape = node.inputs[0].shape
        return expand_reduced(out_grad, shape, self._axes(len(shape)))


def summation(a: Tensor, axes: Any = None) -> Tensor:
    return Summation(axes)(a)


class SumTo(TensorOp):
    """Sum over ``axes`` straight into ``shape`` (the input's shape with those axes
    gone or kept as 1): ``unbroadcast``'s one node where summation + reshape take two
    (a bias adjoint every step). ``axes`` are normalised and non-empty."""

    def __init__(self, axes: tuple[int, ...], shape: tuple[int, ...]) -> None:
        self.axes = axes
        self.shape = shape

    def compute(self, a: NDArray) -> NDArray:
        return a._reduce_to(self.axes, self.shape, "reduce_sum_view", "reduce_sum")

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        from .structure import broadcast_to

        return broadcast_to(out_grad, node.inputs[0].shape)


class Max(ReductionOp):
    """Max over axes; the gradient is split evenly among tied maxima."""

    what = "max"

    def reduce(self, a: NDArray, axes: tuple[int, ...], out_shape: tuple[int, ...]) -> NDArray:
        if 0 in a.shape:
            raise ValueError(f"max: cannot reduce an empty tensor of shape {a.shape} (no identity for max)")
        return a._reduce_to(axes, out_shape, "reduce_max_view", "reduce_max")

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        a = node.inputs[0].realize_cached_data()
        axes = self._axes(a.ndim)
        if not axes:
            return out_grad
        kept = _kept_shape(a.shape, axes)
        is_max = a == node.realize_cached_data().reshape(kept).broadcast_to(a.shape)
        count = is_max.sum(axis=axes, keepdims=True).broadcast_to(a.shape)
        share = Tensor.make_const(is_max / count)  # piecewise constant weights
        return expand_reduced(out_grad, a.shape, axes) * share


def max(a: Tensor, axes: Any = None) -> Tensor:  # noqa: A001 - the course's name
    return Max(axes)(a)
