"""Sequence models: RNNCell, RNN, LSTMCell, LSTM and Embedding (the course's hw4).

Inputs are time-major: ``(seq_len, batch, features)``; states ``(num_layers, batch,
hidden)``. Weights are stored ``(in, out)`` so a step is ``X @ W_ih + h @ W_hh``.
"""

from __future__ import annotations

from typing import Any

from needle_core.autograd import Tensor

from needle_core import init, ops

from ..module import Module, Parameter

_NONLINEARITIES = {"tanh": ops.tanh, "relu": ops.relu}


def _uniform(shape: tuple[int, ...], bound: float, device: Any, dtype: str) -> Parameter:
    return Parameter(init.rand(*shape, low=-bound, high=bound, device=device, dtype=dtype))


def _zeros_state(X: Tensor, cell: Any) -> Tensor:
    return init.zeros(X.shape[0], cell.hidden_size, device=X.device, dtype=cell.W_ih.dtype)


def _affine(X: Tensor, h: Tensor | None, cell: Any) -> Tensor:
    """``X @ W_ih + b_ih + h @ W_hh + b_hh``.

    A missing ``h`` is a zero state that still goes through ``W_hh``, as in the
    course, so ``W_hh.grad`` is a zero matrix rather than ``None``.
    """
    out = X @ cell.W_ih
    if cell.bias_ih is not None:
        out = out + cell.bias_ih
    out = out + (_zeros_state(X, cell) if h is None else h) @ cell.W_hh
    if cell.bias_hh is not None:
        out = out + cell.bias_hh
    return out


class RNNCell(Module):
    """``h' = nonlinearity(X @ W_ih + b_ih + h @ W_hh + b_hh)``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device: Any = None, dtype: str = "float32") -> None:
        super().__init__()
        if nonlinearity not in _NONLINEARITIES:
            raise ValueError(f"RNNCell nonlinearity must be one of {sorted(_NONLINEARITIES)}, got {nonlinearity!r}")
        self.input_size, self.hidden_size, self.nonlinearity = input_size, hidden_size, nonlinearity
        k = (1.0 / hidden_size) ** 0.5
        self.W_ih = _uniform((input_size, hidden_size), k, device, dtype)
        self.W_hh = _uniform((hidden_size, hidden_size), k, device, dtype)
        self.bias_ih = _uniform((hidden_size,), k, device, dtype) if bias else None
        self.bias_hh = _uniform((hidden_size,), k, device, dtype) if bias else None

    def forward(self, X: Tensor, h: Tensor | None = None) -> Tensor:
        return _NONLINEARITIES[self.nonlinearity](_affine(X, h, self))


class LSTMCell(Module):
    """One LSTM step; gates ``i, f, g, o`` are the four column blocks of ``W_ih``/``W_hh``:
    ``c' = sigmoid(f) * c + sigmoid(i) * tanh(g)``, ``h' = sigmoid(o) * tanh(c')``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None,
                 dtype: str = "float32") -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        k = (1.0 / hidden_size) ** 0.5
        self.W_ih = _uniform((input_size, 4 * hidden_size), k, device, dtype)
        self.W_hh = _uniform((hidden_size, 4 * hidden_size), k, device, dtype)
        self.bias_ih = _uniform((4 * hidden_size,), k, device, dtype) if bias else None
        self.bias_hh = _uniform((4 * hidden_size,), k, device, dtype) if bias else None

    def forward(self, X: Tensor, h: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        h0, c0 = (None, None) if h is None else h
        gates = _affine(X, h0, self)
        # one node for the gates' elementwise part: the device's fused lstm_cell kernels
        # when it has them (core composes sigmoid/tanh/mul otherwise)
        state = ops.lstm_cell(gates, _zeros_state(X, self) if c0 is None else c0)
        return state[0], state[1]

    def run(self, X: Tensor, h: tuple[Tensor, Tensor] | None = None) -> tuple[list[Tensor], tuple[Tensor, Tensor]]:
        """The cell over a sequence ``X`` ``(seq_len, batch, input)``: every step's ``h`` and
        the final ``(h, c)``, as ``forward`` step by step. The input projection
        ``X @ W_ih + b_ih`` of all steps is one matmul; only ``h @ W_hh`` is sequential."""
        seq_len, batch = X.shape[0], X.shape[1]
        proj = X.reshape((seq_len * batch, self.input_size)) @ self.W_ih
        if self.bias_ih is not None:
            proj = proj + self.bias_ih
        steps = ops.split(proj.reshape((seq_len, batch, 4 * self.hidden_size)), 0)
        if h is None:  # a zero state, still through W_hh (W_hh.grad is zeros, not None, as in forward)
            h_t = c_t = init.zeros(batch, self.hidden_size, device=X.device, dtype=self.W_ih.dtype)
        else:
            h_t, c_t = h
        outputs = []
        for t in range(seq_len):
            gates = steps[t] + h_t @ self.W_hh
            if self.bias_hh is not None:
                gates = gates + self.bias_hh
            state = ops.lstm_cell(gates, c_t)
            h_t, c_t = state[0], state[1]
            outputs.append(h_t)
        return outputs, (h_t, c_t)


class RNN(Module):
    """A stack of ``num_layers`` RNNCells (``self.rnn_cells``) run over a sequence."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 nonlinearity: str = "tanh", device: Any = None, dtype: str = "float32") -> None:
        super().__init__()
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.rnn_cells = [
            RNNCell(input_size if layer == 0 else hidden_size, hidden_size, bias, nonlinearity, device, dtype)
            for layer in range(num_layers)
        ]

    def forward(self, X: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``X`` ``(seq_len, batch, input)`` -> ``(output (seq_len, batch, hidden), h_n)``."""
        xs = list(ops.split(X, 0))
        hs = list(ops.split(h0, 0)) if h0 is not None else [None] * self.num_layers
        for layer, cell in enumerate(self.rnn_cells):
            h = hs[layer]
            for t, x in enumerate(xs):
                h = xs[t] = cell(x, h)
            hs[layer] = h
        return ops.stack(xs, 0), ops.stack(hs, 0)


class LSTM(Module):
    """A stack of ``num_layers`` LSTMCells (``self.lstm_cells``) run over a sequence."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 device: Any = None, dtype: str = "float32") -> None:
        super().__init__()
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.lstm_cells = [
            LSTMCell(input_size if layer == 0 else hidden_size, hidden_size, bias, device, dtype)
            for layer in range(num_layers)
        ]

    def forward(self, X: Tensor, h: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """``X`` ``(seq_len, batch, input)`` -> ``(output, (h_n, c_n))``."""
        if h is None:
            hs: list = [None] * self.num_layers
            cs: list = [None] * self.num_layers
        else:
            hs, cs = list(ops.split(h[0], 0)), list(ops.split(h[1], 0))
        for layer, cell in enumerate(self.lstm_cells):
            state = None if hs[layer] is None else (hs[layer], cs[layer])
            outputs, (hs[layer], cs[layer]) = cell.run(X, state)
            X = ops.stack(outputs, 0)  # the next layer's input
        return X, (ops.stack(hs, 0), ops.stack(cs, 0))


class Embedding(Module):
    """Looks up rows of ``weight`` ``(num_embeddings, embedding_dim)`` for integer-valued inputs."""

    def __init__(self, num_embeddings: int, embedding_dim: int, device: Any = None, dtype: str = "float32") -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.weight = Parameter(init.randn(num_embeddings, embedding_dim, device=device, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        """``x`` ``(seq_len, batch)`` of indices -> ``(seq_len, batch, embedding_dim)``."""
        w = self.weight
        if x.device != w.device or x.dtype != w.dtype:  # indices as the table's dtype, on its device
            x = Tensor(x.numpy(), device=w.device, dtype=w.dtype, requires_grad=False)
        # a row lookup (the device's take_rows kernel, else one-hot @ weight as in the course)
        return ops.take_rows(w, x)


# One class identity across importlib.reload / IPython %autoreload (see needle_core._reload).
from needle_core._reload import keep_classes  # noqa: E402

keep_classes(globals())
