"""Tuple-valued graph nodes: make_tuple, tuple_get_item, fused_add_scalars."""

from __future__ import annotations

from typing import Any

from .. import backend_ndarray as nd
from ..autograd import Tensor, TensorOp, TensorTuple, TensorTupleOp, Value
from ..backend_ndarray import NDArray
from .common import as_scalar


class MakeTensorTuple(TensorTupleOp):
    def compute(self, *args: NDArray) -> tuple[NDArray, ...]:
        return tuple(args)

    def gradient(self, out_grad: TensorTuple, node: TensorTuple) -> tuple[Tensor | None, ...]:
        return tuple(out_grad[i] if x.requires_grad else None for i, x in enumerate(node.inputs))


def make_tuple(*args: Tensor) -> TensorTuple:
    return MakeTensorTuple()(*args)


class TupleGetItem(TensorOp):
    def __init__(self, index: int) -> None:
        self.index = index

    def __call__(self, a: TensorTuple, fold_const: bool = True) -> Value:
        # make_tuple(...)[i] is the i-th input itself: no node, as in the course
        if fold_const and isinstance(a.op, MakeTensorTuple):
            return a.inputs[self.index]
        return Tensor.make_from_op(self, [a])

    def compute(self, a: tuple[NDArray, ...]) -> NDArray:
        return a[self.index]

    def gradient(self, out_grad: Tensor, node: Tensor) -> TensorTuple:
        parts = node.inputs[0].realize_cached_data()
        index = self.index % len(parts)
        grads = [
            out_grad if i == index else Tensor.make_const(nd.full(x.shape, 0.0, dtype=x.dtype, device=x.device))
            for i, x in enumerate(parts)
        ]
        return MakeTensorTuple()(*grads)


def tuple_get_item(value: TensorTuple, index: int) -> Tensor:
    return TupleGetItem(index)(value)


class FusedAddScalars(TensorTupleOp):
    """``(a + c0, a + c1)`` as one node."""

    def __init__(self, c0: Any, c1: Any) -> None:
        self.c0 = as_scalar(c0)
        self.c1 = as_scalar(c1)

    def compute(self, a: NDArray) -> tuple[NDArray, NDArray]:
        return a + self.c0, a + self.c1

    def gradient(self, out_grad: TensorTuple, node: TensorTuple) -> Tensor:
        return out_grad[0] + out_grad[1]


def fused_add_scalars(x: Tensor, c0: Any, c1: Any) -> TensorTuple:
    return FusedAddScalars(c0, c1)(x)
