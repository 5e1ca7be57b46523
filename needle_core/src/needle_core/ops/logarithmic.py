"""Log-domain reductions: logsumexp, logsoftmax, and the softmax their gradients use.

Every one is max-shifted (stable). An all-``-inf`` slice has logsumexp ``-inf`` and
a zero softmax (so a zero gradient) instead of NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend_ndarray as nd
from ..autograd import Tensor, TensorOp
from ..backend_ndarray import NDArray
from .common import AxesOp
from .mathematic import exp
from .reduction import ReductionOp, expand_reduced, summation

_FLOORS: dict[str, float] = {}


def _finite_floor(dtype: str) -> float:
    """The most negative finite value of ``dtype`` (cached: np.finfo is slow)."""
    floor = _FLOORS.get(dtype)
    if floor is None:
        floor = _FLOORS[dtype] = float(-np.finfo(np.dtype(dtype)).max)
    return floor


class Softmax(AxesOp):
    """``exp(a - max) / sum(exp(a - max))`` over ``axes``, broadcast back.

    Shifting by the max (not by logsumexp) keeps the largest entries exact in
    float32. An all ``-inf`` slice gives zeros: its shift is clamped finite and its
    denominator (>= 1 for any other slice) clamped to 1.
    """

    what = "softmax"

    def compute(self, a: NDArray) -> NDArray:
        axes = self._axes(a.ndim)
        shift = a.max(axis=axes, keepdims=True).maximum(_finite_floor(a.dtype))
        e = (a - shift.broadcast_to(a.shape)).exp()
        total = e.sum(axis=axes, keepdims=True).maximum(1.0)
        return e / total.broadcast_to(a.shape)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        axes = self._axes(len(node.shape))
        weighted = summation(out_grad * node, axes)
        return node * (out_grad - expand_reduced(weighted, node.shape, axes))


def softmax(a: Tensor, axes: Any = None) -> Tensor:
    return Softmax(axes)(a)


class LogSumExp(ReductionOp):
    what = "logsumexp"

    def reduce(self, a: NDArray, axes: tuple[int, ...], out_shape: tuple[int, ...]) -> NDArray:
        return nd.logsumexp(a, axes=axes, keepdims=True).reshape(out_shape)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        a = node.inputs[0]
        axes = self._axes(len(a.shape))
        if not axes:
            return out_grad
        probs = Softmax(axes)(a)
        return expand_reduced(out_grad, a.shape, axes) * probs


def logsumexp(a: Tensor, axes: Any = None) -> Tensor:
    return LogSumExp(axes)(a)


class LogSoftmax(TensorOp):
    """``a - logsumexp(a)`` over the last axis (the course uses it on 2-D logits)."""

    def compute(self, a: NDArray) -> NDArray:
        if a.ndim < 1:
            raise ValueError("logsoftmax: needs at least 1 dimension, got a 0-D tensor")
        lse = nd.logsumexp(a, axes=(a.ndim - 1,), keepdims=True)
        return a - lse.broadcast_to(a.shape)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        axis = (len(node.shape) - 1,)
        total = expand_reduced(summation(out_grad, axis), node.shape, axis)
        return out_grad - total * exp(node)  # exp(logsoftmax) = softmax


def logsoftmax(a: Tensor) -> Tensor:
    return LogSoftmax()(a)
