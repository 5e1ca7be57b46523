"""Row lookups as graph nodes: ``take_rows`` (an embedding lookup) and its adjoint
``scatter_add_rows``, each the other's gradient. The index is a constant of the graph."""

from __future__ import annotations

from .. import backend_ndarray as nd
from ..autograd import Tensor, TensorOp
from ..backend_ndarray import NDArray


class TakeRows(TensorOp):
    """``table[index]``: rows of ``table (rows, width)``, shape ``index.shape + (width,)``."""

    def compute(self, table: NDArray, index: NDArray) -> NDArray:
        return nd.take_rows(table, index)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor, None]:
        table, index = node.inputs
        return ScatterAddRows(table.shape[0])(out_grad, index), None


class ScatterAddRows(TensorOp):
    """``(rows, width)`` zeros with ``src[k]`` added to row ``index[k]``."""

    def __init__(self, rows: int) -> None:
        self.rows = rows

    def compute(self, src: NDArray, index: NDArray) -> NDArray:
        return nd.scatter_add_rows(src, index, self.rows)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor, None]:
        _, index = node.inputs
        return TakeRows()(out_grad, index), None


def take_rows(table: Tensor, index: Tensor) -> Tensor:
    """``table[index]`` for a 2-D ``table`` and whole-number row indices of any shape
    (stored in ``table``'s dtype, on its device); differentiable in ``table`` only."""
    return TakeRows()(table, index.detach() if index.requires_grad else index)
