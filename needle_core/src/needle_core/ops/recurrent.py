"""Recurrent cells as single graph nodes: ``lstm_cell`` (one node for the elementwise
part of an LSTM step, run by the device's fused kernels when it has them)."""

from __future__ import annotations

from .. import backend_ndarray as nd
from ..autograd import Tensor, TensorTuple, TensorTupleOp
from ..backend_ndarray import NDArray


class LSTMCell(TensorTupleOp):
    """``(h, c)`` from the gate pre-activations ``(batch, 4 * hidden)`` (blocks i, f, g, o)
    and the previous cell state ``(batch, hidden)``."""

    def compute(self, gates: NDArray, c_prev: NDArray) -> tuple[NDArray, NDArray]:
        return nd.lstm_cell(gates, c_prev)

    def gradient(self, out_grad: TensorTuple, node: TensorTuple) -> tuple[Tensor, Tensor]:
        gates, c_prev = node.inputs
        adjoints = LSTMCellBackward()(gates, c_prev, out_grad[0], out_grad[1])
        return adjoints[0], adjoints[1]


class LSTMCellBackward(TensorTupleOp):
    """``(d gates, d c_prev)`` of :class:`LSTMCell` given ``(d h, d c)``."""

    def compute(self, gates: NDArray, c_prev: NDArray, dh: NDArray, dc: NDArray) -> tuple[NDArray, NDArray]:
        return nd.lstm_cell_backward(gates, c_prev, dh, dc)

    def gradient(self, out_grad: TensorTuple, node: TensorTuple) -> None:
        raise NotImplementedError(
            "second derivatives through lstm_cell are not implemented; compose the cell from "
            "ops.sigmoid/ops.tanh/ops.multiply for a twice-differentiable graph"
        )


def lstm_cell(gates: Tensor, c_prev: Tensor) -> TensorTuple:
    """One LSTM step's elementwise part: ``c = sigmoid(f) * c_prev + sigmoid(i) * tanh(g)``,
    ``h = sigmoid(o) * tanh(c)``; returns the tuple ``(h, c)``."""
    return LSTMCell()(gates, c_prev)
