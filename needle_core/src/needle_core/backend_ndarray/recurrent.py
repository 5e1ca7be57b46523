"""The LSTM cell's elementwise part on NDArrays: the device's ``lstm_cell`` /
``lstm_cell_backward`` kernels when it has them, else a composition of primitives
(the reference the conformance suite checks the kernels against).

``gates`` is ``(batch, 4 * hidden)``: the pre-activations of the gates ``i, f, g, o``
(in that column order) after the step's matmul and biases.
"""

from __future__ import annotations

from .composite import _handle, sigmoid
from ._operands import check_partners
from .ndarray import NDArray, _alloc


def _split_gates(gates: NDArray, c_prev: NDArray, name: str) -> tuple[int, int]:
    if len(gates.shape) != 2 or gates.shape[1] % 4 or c_prev.shape != (gates.shape[0], gates.shape[1] // 4):
        raise ValueError(f"{name}: expected gates (batch, 4 * hidden) and c_prev (batch, hidden), "
                         f"got {gates.shape} and {c_prev.shape}")
    check_partners(name, gates, "gates", c_prev=c_prev)
    return gates.shape[0], gates.shape[1] // 4


def _activations(gates: NDArray, hidden: int) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    i, f, g, o = (gates[:, k * hidden : (k + 1) * hidden] for k in range(4))
    return sigmoid(i), sigmoid(f), g.tanh(), sigmoid(o)


def lstm_cell(gates: NDArray, c_prev: NDArray) -> tuple[NDArray, NDArray]:
    """``(h, c)``: ``c = sigmoid(f) * c_prev + sigmoid(i) * tanh(g)``, ``h = sigmoid(o) * tanh(c)``."""
    batch, hidden = _split_gates(gates, c_prev, "lstm_cell")
    dev = gates.device
    if dev.lstm_cell is not None:
        h, c = _alloc((batch, hidden), dev, gates.dtype), _alloc((batch, hidden), dev, gates.dtype)
        dev.lstm_cell(_handle(gates), _handle(c_prev), h._handle, c._handle, batch, hidden)
        return h, c
    i, f, g, o = _activations(gates, hidden)
    c = f * c_prev + i * g
    return o * c.tanh(), c


def lstm_cell_backward(gates: NDArray, c_prev: NDArray, dh: NDArray, dc: NDArray) -> tuple[NDArray, NDArray]:
    """Adjoints ``(d gates, d c_prev)`` of :func:`lstm_cell` given those of ``h`` and ``c``
    (the activations are recomputed from ``gates``)."""
    batch, hidden = _split_gates(gates, c_prev, "lstm_cell_backward")
    if dh.shape != c_prev.shape or dc.shape != c_prev.shape:
        raise ValueError(f"lstm_cell_backward: expected dh and dc of shape {c_prev.shape}, "
                         f"got {dh.shape} and {dc.shape}")
    dev, dtype = gates.device, gates.dtype
    if dev.lstm_cell_backward is not None:
        dgates, dc_prev = _alloc(gates.shape, dev, dtype), _alloc(c_prev.shape, dev, dtype)
        dev.lstm_cell_backward(_handle(gates), _handle(c_prev), _handle(dh), _handle(dc), dgates._handle,
                               dc_prev._handle, batch, hidden)
        return dgates, dc_prev
    i, f, g, o = _activations(gates, hidden)
    tc = (f * c_prev + i * g).tanh()
    gc = dc + dh * o * (1.0 - tc * tc)
    dgates = _alloc(gates.shape, dev, dtype)
    blocks = (gc * g * (i * (1.0 - i)), gc * c_prev * (f * (1.0 - f)), gc * i * (1.0 - g * g),
              dh * tc * (o * (1.0 - o)))
    for k, block in enumerate(blocks):
        dgates[:, k * hidden : (k + 1) * hidden] = block
    return dgates, gc * f
