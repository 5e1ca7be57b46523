"""RNNCell, RNN, LSTMCell, LSTM and Embedding against a NumPy reference implementation."""

from __future__ import annotations

import needle as ndl
import needle.nn as nn
import numpy as np
import pytest


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_rnn_cell(x, h, cell, nonlinearity="tanh"):
    z = x @ cell["W_ih"] + h @ cell["W_hh"] + cell["bias_ih"] + cell["bias_hh"]
    return np.tanh(z) if nonlinearity == "tanh" else np.maximum(z, 0)


def np_lstm_cell(x, h, c, cell):
    z = x @ cell["W_ih"] + h @ cell["W_hh"] + cell["bias_ih"] + cell["bias_hh"]
    i, f, g, o = np.split(z, 4, axis=1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
    return sigmoid(o) * np.tanh(c), c


def weights(cell):
    return {k: getattr(cell, k).numpy().astype(np.float64) for k in ("W_ih", "W_hh", "bias_ih", "bias_hh")}


def _t(dev, a):
    return ndl.Tensor(np.asarray(a, dtype="float32"), device=dev)


def _assert_cell_draws(cell, seed: int, hidden_size: int, shapes: list[tuple[int, ...]]) -> None:
    """W_ih, W_hh, bias_ih, bias_hh are U(-k, k) draws of ``shapes``, in that order, after ``seed``."""
    np.random.seed(seed)
    k = np.sqrt(1 / hidden_size)
    expected = [np.random.rand(*s) * 2 * k - k for s in shapes]
    for got, exp in zip([cell.W_ih, cell.W_hh, cell.bias_ih, cell.bias_hh], expected, strict=True):
        np.testing.assert_allclose(got.numpy(), exp, rtol=1e-6, atol=1e-7)


def test_rnn_cell_init_draw_order(needle_device):
    np.random.seed(3)
    cell = nn.RNNCell(5, 4, device=needle_device)
    _assert_cell_draws(cell, 3, 4, [(5, 4), (4, 4), (4,), (4,)])


def test_lstm_cell_shapes_and_draws(needle_device):
    np.random.seed(4)
    cell = nn.LSTMCell(3, 2, device=needle_device)
    _assert_cell_draws(cell, 4, 2, [(3, 8), (2, 8), (8,), (8,)])
    assert len(nn.LSTMCell(3, 2, bias=False).parameters()) == 2


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_cell_forward(needle_device, nonlinearity):
    np.random.seed(0)
    cell = nn.RNNCell(3, 4, nonlinearity=nonlinearity, device=needle_device)
    x, h = np.random.randn(2, 3), np.random.randn(2, 4)
    expected = np_rnn_cell(x, h, weights(cell), nonlinearity)
    np.testing.assert_allclose(cell(_t(needle_device, x), _t(needle_device, h)).numpy(), expected, rtol=1e-5, atol=1e-5)
    zero = np_rnn_cell(x, np.zeros((2, 4)), weights(cell), nonlinearity)
    np.testing.assert_allclose(cell(_t(needle_device, x)).numpy(), zero, rtol=1e-5, atol=1e-5)


def test_lstm_cell_forward(needle_device):
    np.random.seed(1)
    cell = nn.LSTMCell(3, 4, device=needle_device)
    x, h, c = np.random.randn(2, 3), np.random.randn(2, 4), np.random.randn(2, 4)
    eh, ec = np_lstm_cell(x, h, c, weights(cell))
    gh, gc = cell(_t(needle_device, x), (_t(needle_device, h), _t(needle_device, c)))
    np.testing.assert_allclose(gh.numpy(), eh, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gc.numpy(), ec, rtol=1e-5, atol=1e-5)
    zh, _ = np_lstm_cell(x, np.zeros((2, 4)), np.zeros((2, 4)), weights(cell))
    np.testing.assert_allclose(cell(_t(needle_device, x))[0].numpy(), zh, rtol=1e-5, atol=1e-5)


def _stack_and_inputs(cls, seed: int, dims: tuple[int, ...], device, n_states: int, with_state: bool):
    """After ``seed``: ``cls(input, hidden, num_layers)`` on ``device``, then the input sequence and
    ``n_states`` initial states (random with ``with_state``, else zeros).
    ``dims``: seq, batch, input, hidden, layers."""
    seq, bs, inp, hid, layers = dims
    np.random.seed(seed)
    model = cls(inp, hid, num_layers=layers, device=device)
    x = np.random.randn(seq, bs, inp)
    states = [np.random.randn(layers, bs, hid) if with_state else np.zeros((layers, bs, hid)) for _ in range(n_states)]
    return model, x, states


@pytest.mark.parametrize("with_state", [False, True])
def test_rnn_multilayer(needle_device, with_state):
    seq, bs, hid, layers = 5, 3, 6, 2
    rnn, x, (h0,) = _stack_and_inputs(nn.RNN, 2, (seq, bs, 4, hid, layers), needle_device, 1, with_state)
    assert len(rnn.rnn_cells) == layers
    out, h_n = rnn(_t(needle_device, x), _t(needle_device, h0) if with_state else None)
    layer_in, finals = x, []
    for layer, cell in enumerate(rnn.rnn_cells):
        h, outs = h0[layer], []
        for t in range(seq):
            h = np_rnn_cell(layer_in[t], h, weights(cell))
            outs.append(h)
        layer_in, _ = np.stack(outs), finals.append(h)
    assert out.shape == (seq, bs, hid) and h_n.shape == (layers, bs, hid)
    np.testing.assert_allclose(out.numpy(), layer_in, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(h_n.numpy(), np.stack(finals), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("with_state", [False, True])
def test_lstm_multilayer(needle_device, with_state):
    seq, layers = 4, 3
    lstm, x, (h0, c0) = _stack_and_inputs(nn.LSTM, 3, (seq, 2, 3, 5, layers), needle_device, 2, with_state)
    assert len(lstm.lstm_cells) == layers
    state = (_t(needle_device, h0), _t(needle_device, c0)) if with_state else None
    out, (h_n, c_n) = lstm(_t(needle_device, x), state)
    layer_in, hs, cs = x, [], []
    for layer, cell in enumerate(lstm.lstm_cells):
        h, c, outs = h0[layer], c0[layer], []
        for t in range(seq):
            h, c = np_lstm_cell(layer_in[t], h, c, weights(cell))
            outs.append(h)
        layer_in = np.stack(outs)
        hs.append(h)
        cs.append(c)
    np.testing.assert_allclose(out.numpy(), layer_in, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(h_n.numpy(), np.stack(hs), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(c_n.numpy(), np.stack(cs), rtol=1e-5, atol=1e-5)


def test_embedding(needle_device):
    np.random.seed(9)
    emb = nn.Embedding(10, 4, device=needle_device)
    np.random.seed(9)
    np.testing.assert_allclose(emb.weight.numpy(), np.random.randn(10, 4), rtol=1e-6, atol=1e-6)
    idx = np.array([[1, 9], [0, 1], [4, 4]])
    out = emb(ndl.Tensor(idx, device=needle_device))
    assert out.shape == (3, 2, 4)
    np.testing.assert_allclose(out.numpy(), emb.weight.numpy()[idx], rtol=1e-6)


@pytest.mark.parametrize("cls", [nn.RNNCell, nn.LSTMCell])
def test_cell_without_state_gives_zero_w_hh_gradient(needle_device, cls):
    cell = cls(3, 4, device=needle_device)
    out = cell(_t(needle_device, np.random.randn(2, 3)))
    (out[0] if isinstance(out, tuple) else out).sum().backward()
    np.testing.assert_array_equal(cell.W_hh.grad.numpy(), np.zeros(cell.W_hh.shape))
