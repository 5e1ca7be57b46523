"""Every op: forward against a NumPy formula, and its gradient against float64
central differences (``gradcheck``), on each device; plus every bad-input error."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import needle as ndl
from needle.testing._reference import np_conv_nhwc, np_conv_nhwc_grad_weight
from needle.testing.gradcheck import check_gradients

# -- NumPy references ------------------------------------------------------------------


def np_logsumexp(x: np.ndarray, axes: Any = None) -> np.ndarray:
    m = np.max(x, axis=axes, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)) + m
    return np.squeeze(out, axis=axes) if axes is not None else out.reshape(())


def np_logsoftmax(x: np.ndarray) -> np.ndarray:
    return x - np_logsumexp(x, axes=-1)[..., None]


def np_dilate(x: np.ndarray, axes: tuple, d: int) -> np.ndarray:
    shape = [n * (d + 1) if i in axes else n for i, n in enumerate(x.shape)]
    out = np.zeros(shape, dtype=x.dtype)
    out[tuple(slice(None, None, d + 1) if i in axes else slice(None) for i in range(x.ndim))] = x
    return out


# -- the case table --------------------------------------------------------------------


@dataclass
class Case:
    name: str
    fn: Callable[..., Any]  # on needle Tensors
    ref: Callable[..., np.ndarray]  # on float64 NumPy arrays
    shapes: tuple
    kind: str = "normal"  # "normal" | "positive" | "away0" (|x| >= 0.2) | "distinct"
    grad: bool = True
    extra: dict = field(default_factory=dict)


def _conv_case(name: str, stride: int, padding: int, shapes: tuple) -> Case:
    """ops.conv at one stride and padding against the direct NumPy convolution."""
    return Case(
        name, lambda a, w: ops.conv(a, w, stride, padding), lambda a, w: np_conv_nhwc(a, w, stride, padding), shapes
    )


def _draw(shape: tuple, kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "positive":
        return rng.uniform(0.5, 2.0, shape)
    if kind == "away0":
        return rng.uniform(0.2, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
    if kind == "distinct":  # well separated values: max has a unique, stable argmax
        return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 + rng.uniform(0, 0.01, shape)
    return rng.standard_normal(shape)


def _sum_split(x, axis):
    parts = ndl.split(x, axis)
    total = parts[0]
    for i in range(1, len(parts)):
        total = total + parts[i] * float(i + 1)
    return total


def _np_sum_split(x, axis):
    return sum(np.take(x, i, axis=axis) * (i + 1) for i in range(x.shape[axis]))


_INDEX = np.array([[2, 0], [2, 3], [0, 0]])  # repeated rows, and row 1 never taken


def _index(t):
    return ndl.Tensor(_INDEX, device=t.device, dtype=t.dtype, requires_grad=False)


_LABELS = np.array([2, 0, 4])


def _labels(t):
    return ndl.Tensor(_LABELS, device=t.device, dtype=t.dtype, requires_grad=False)


def _lstm_out(state):
    return state[0] * 1.5 + state[1] * state[1]


def _np_lstm_out(g, c):
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    i, f, gg, o = np.split(g, 4, axis=1)
    c2 = sig(f) * c + sig(i) * np.tanh(gg)
    return sig(o) * np.tanh(c2) * 1.5 + c2 * c2


ops = ndl.ops
CASES = [
    Case("add", lambda a, b: a + b, np.add, ((3, 4), (3, 4))),
    Case("add_bcast", lambda a, b: a + b, np.add, ((3, 1), (1, 4))),
    Case("add_bcast_rank", lambda a, b: ops.add(a, b), np.add, ((2, 3, 4), (4,))),
    Case("add_scalar", lambda a: a + 1.5, lambda a: a + 1.5, ((3, 4),)),
    Case("rsub_scalar", lambda a: 2.0 - a, lambda a: 2.0 - a, ((3, 4),)),
    Case("sub", lambda a, b: a - b, np.subtract, ((3, 4), (3, 4))),
    Case("multiply", lambda a, b: a * b, np.multiply, ((3, 4), (3, 4))),
    Case("multiply_bcast", lambda a, b: ops.multiply(a, b), np.multiply, ((2, 1, 4), (3, 1))),
    Case("mul_scalar", lambda a: ops.mul_scalar(a, -0.7), lambda a: a * -0.7, ((3, 4),)),
    Case("divide", lambda a, b: a / b, np.divide, ((3, 4), (3, 4)), kind="positive"),
    Case("divide_bcast", lambda a, b: a / b, np.divide, ((3, 4), (4,)), kind="positive"),
    Case("divide_scalar", lambda a: ops.divide_scalar(a, 3.0), lambda a: a / 3.0, ((3, 4),)),
    Case("rdiv_scalar", lambda a: 2.0 / a, lambda a: 2.0 / a, ((3, 4),), kind="positive"),
    Case("power", lambda a, b: ops.power(a, b), np.power, ((3, 4), (3, 4)), kind="positive"),
    Case("power_bcast", lambda a, b: a**b, np.power, ((1, 3), (3,)), kind="positive"),
    Case("power_scalar_2", lambda a: a**2, lambda a: a**2, ((3, 4),)),
    Case("power_scalar_3", lambda a: ops.power_scalar(a, 3), lambda a: a**3, ((3, 4),)),
    Case("power_scalar_half", lambda a: a**0.5, np.sqrt, ((3, 4),), kind="positive"),
    Case("power_scalar_neg", lambda a: a ** (-1.5), lambda a: a**-1.5, ((3, 4),), kind="positive"),
    Case("power_scalar_0", lambda a: a**0, lambda a: a**0, ((3, 4),)),
    Case("negate", lambda a: -a, np.negative, ((3, 4),)),
    Case("log", ops.log, np.log, ((3, 4),), kind="positive"),
    Case("exp", ops.exp, np.exp, ((3, 4),)),
    Case("relu", ops.relu, lambda a: np.maximum(a, 0), ((3, 4),), kind="away0"),
    Case("tanh", ops.tanh, np.tanh, ((3, 4),)),
    Case("sigmoid", ops.sigmoid, lambda a: 1 / (1 + np.exp(-a)), ((3, 4),)),
    Case("transpose", ops.transpose, lambda a: np.swapaxes(a, -1, -2), ((2, 3, 4),)),
    Case("transpose_axes", lambda a: ops.transpose(a, (0, 2)), lambda a: np.swapaxes(a, 0, 2), ((2, 3, 4),)),
    Case("permute", lambda a: ops.permute(a, (2, 0, 1)), lambda a: np.transpose(a, (2, 0, 1)), ((2, 3, 4),)),
    Case("reshape", lambda a: ops.reshape(a, (4, 6)), lambda a: a.reshape(4, 6), ((2, 3, 4),)),
    Case("reshape_view", lambda a: ops.reshape(ops.transpose(a), (12,)), lambda a: a.T.reshape(12), ((3, 4),)),
    Case("reshape_infer", lambda a: a.reshape((-1, 2)), lambda a: a.reshape(-1, 2), ((2, 3, 4),)),
    Case("broadcast_to", lambda a: ops.broadcast_to(a, (2, 3, 4)), lambda a: np.broadcast_to(a, (2, 3, 4)), ((3, 1),)),
    Case("broadcast_to_same_rank", lambda a: a.broadcast_to((3, 4)), lambda a: np.broadcast_to(a, (3, 4)), ((1, 4),)),
    Case("summation_all", ops.summation, lambda a: np.sum(a), ((3, 4),)),
    Case("summation_axis", lambda a: ops.summation(a, 1), lambda a: a.sum(1), ((2, 3, 4),)),
    Case("summation_axes", lambda a: a.sum((0, 2)), lambda a: a.sum((0, 2)), ((2, 3, 4),)),
    Case("summation_neg_axis", lambda a: ops.summation(a, -1), lambda a: a.sum(-1), ((2, 3, 4),)),
    Case("matmul", lambda a, b: a @ b, np.matmul, ((3, 5), (5, 2))),
    Case("matmul_batched", ops.matmul, np.matmul, ((2, 3, 4), (2, 4, 2))),
    Case("matmul_bcast_1", ops.matmul, np.matmul, ((3, 2, 1), (3, 3, 1, 2))),
    Case("matmul_bcast_2", ops.matmul, np.matmul, ((2, 3, 5, 4), (4, 3))),
    Case("matmul_bcast_3", ops.matmul, np.matmul, ((2, 4), (2, 4, 4, 2))),
    Case("max_all", ops.max, lambda a: np.max(a), ((3, 4),), kind="distinct"),
    Case("max_axis", lambda a: ops.max(a, 1), lambda a: a.max(1), ((2, 3, 4),), kind="distinct"),
    Case("max_axes", lambda a: ops.max(a, (0, 2)), lambda a: a.max((0, 2)), ((2, 3, 4),), kind="distinct"),
    Case("logsoftmax", ops.logsoftmax, np_logsoftmax, ((3, 5),)),
    Case("logsumexp_all", ops.logsumexp, np_logsumexp, ((3, 4),)),
    Case("logsumexp_axis", lambda a: ops.logsumexp(a, 1), lambda a: np_logsumexp(a, 1), ((2, 3, 4),)),
    Case("logsumexp_axes", lambda a: ops.logsumexp(a, (0, 2)), lambda a: np_logsumexp(a, (0, 2)), ((2, 3, 4),)),
    Case("softmax", lambda a: ops.softmax(a, 1), lambda a: np.exp(a - np_logsumexp(a, 1)[:, None]), ((3, 4),)),
    Case("stack_0", lambda a, b, c: ops.stack([a, b, c], 0), lambda *x: np.stack(x, 0), ((3, 4),) * 3),
    Case("stack_1", lambda a, b: ops.stack((a, b), 1), lambda *x: np.stack(x, 1), ((3, 4),) * 2),
    Case("stack_last", lambda a, b: ops.stack([a, b], -1), lambda *x: np.stack(x, -1), ((3, 4),) * 2),
    Case("split_1", lambda a: _sum_split(a, 1), lambda a: _np_sum_split(a, 1), ((2, 3, 4),)),
    Case("split_0", lambda a: _sum_split(a, 0), lambda a: _np_sum_split(a, 0), ((3, 4),)),
    Case(
        "split_mixed_consumers",
        lambda a: ops.stack(ops.split(a, 0), 1) * 3.0 + ops.split(a, 0)[1],
        lambda a: np.stack(list(a), 1) * 3.0 + a[1],
        ((3, 3),),
    ),
    Case("flip", lambda a: ops.flip(a, (0, 2)), lambda a: np.flip(a, (0, 2)), ((2, 3, 4),)),
    Case("flip_1", lambda a: ops.flip(a, 1), lambda a: np.flip(a, 1), ((2, 3, 4),)),
    Case("dilate", lambda a: ops.dilate(a, (0, 1), 1), lambda a: np_dilate(a, (0, 1), 1), ((2, 3),)),
    Case("dilate_2", lambda a: ops.dilate(a, (1,), 2), lambda a: np_dilate(a, (1,), 2), ((2, 3, 2),)),
    Case("undilate", lambda a: ops.undilate(a, (0, 1), 1), lambda a: a[::2, ::2], ((4, 6),)),
    Case("undilate_odd", lambda a: ops.undilate(a, (1,), 2), lambda a: a[:, ::3], ((2, 7),)),
    Case("pad", lambda a: ops.pad(a, ((1, 0), (2, 1))), lambda a: np.pad(a, ((1, 0), (2, 1))), ((2, 3),)),
    Case("crop", lambda a: ops.crop(a, ((1, 3), (0, 2))), lambda a: a[1:3, 0:2], ((4, 3),)),
    _conv_case("conv_s1_p1", 1, 1, ((2, 5, 5, 3), (3, 3, 3, 2))),
    Case(
        "conv_s1_p0",
        lambda a, w: ops.conv(a, w, padding=0),
        lambda a, w: np_conv_nhwc(a, w, 1, 0),
        ((1, 6, 5, 2), (3, 3, 2, 3)),
    ),
    _conv_case("conv_s2_p1", 2, 1, ((2, 6, 6, 2), (3, 3, 2, 2))),
    _conv_case("conv_s2_p0", 2, 0, ((1, 6, 7, 2), (3, 3, 2, 2))),
    _conv_case("conv_s3_p2", 3, 2, ((1, 5, 4, 1), (2, 2, 1, 2))),
    _conv_case("conv_k1", 1, 0, ((2, 3, 3, 3), (1, 1, 3, 2))),
    _conv_case("conv_pad_gt_k", 1, 2, ((1, 3, 3, 1), (2, 2, 1, 1))),
    # strides 2-4, paddings 0-2, C_in != C_out; the k4/k5 cases take the phase-split
    # input adjoint on devices with a conv kernel (one short of the padded grid: k4)
    _conv_case("conv_s2_p2", 2, 2, ((2, 5, 6, 3), (3, 3, 3, 4))),
    _conv_case("conv_s3_p0", 3, 0, ((1, 8, 7, 2), (3, 3, 2, 4))),
    _conv_case("conv_s3_p1", 3, 1, ((2, 7, 7, 4), (2, 2, 4, 3))),
    _conv_case("conv_s2_k4_p0", 2, 0, ((1, 9, 9, 2), (4, 4, 2, 3))),
    _conv_case("conv_s3_k5_p2", 3, 2, ((1, 20, 19, 2), (5, 5, 2, 3))),
    _conv_case("conv_s4_k7_p3", 4, 3, ((1, 29, 30, 1), (7, 7, 1, 2))),
    Case("tuple_get_item", lambda a, b: _get_items(ops.make_tuple(a, b)), lambda a, b: a * b * 2, ((3, 4), (3, 4))),
    Case("fused_add_scalars", lambda a: _fused(a), lambda a: (a + 1.0) * (a - 2.0), ((3, 4),)),
    # h and c both feed the output, so both adjoints reach the cell; hidden 17 leaves SIMD tails
    Case("take_rows", lambda t: ops.take_rows(t, _index(t)) * 2.0, lambda t: t[_INDEX] * 2.0, ((4, 5),)),
    Case(
        "softmax_cross_entropy",
        lambda t: ops.softmax_cross_entropy(t * 3.0, _labels(t)),
        lambda t: np_logsumexp(t * 3.0, 1) - t[np.arange(3), _LABELS] * 3.0,
        ((3, 5),),
    ),
    Case("lstm_cell", lambda g, c: _lstm_out(ops.lstm_cell(g, c)), lambda g, c: _np_lstm_out(g, c), ((2, 68), (2, 17))),
    Case(
        "chain",
        lambda a, b: ops.logsumexp(ops.relu(a @ b) * 2.0 - ops.tanh(a @ b), 1),
        lambda a, b: np_logsumexp(np.maximum(a @ b, 0) * 2 - np.tanh(a @ b), 1),
        ((3, 4), (4, 5)),
        kind="away0",
    ),
]


def _get_items(tt):
    first, second = (ops.TupleGetItem(i)(tt, fold_const=False) for i in (0, 1))
    return first * second * 2.0


def _fused(a):
    x, y = ops.fused_add_scalars(a, 1.0, -2.0)
    return x * y


def _inputs(case: Case, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [_draw(s, case.kind, rng) for s in case.shapes]


def _tensors(arrays, device, dtype="float32"):
    return [ndl.Tensor(a.astype(dtype), device=device, dtype=dtype) for a in arrays]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_forward_float32(case: Case, needle_device) -> None:
    arrays = _inputs(case)
    out = case.fn(*_tensors(arrays, needle_device))
    expected = case.ref(*[a.astype(np.float32).astype(np.float64) for a in arrays])
    assert out.dtype == "float32"
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", [c for c in CASES if c.grad], ids=[c.name for c in CASES if c.grad])
def test_gradient(case: Case, needle_device) -> None:
    check_gradients(case.fn, *_inputs(case), device=needle_device)


def _conv_grad_norms(stride: int, padding: int):
    """|dL/dx|^2 + |dL/dw|^2 for L = sum(conv(x, w) * r): differentiating it runs
    backprop through conv's own adjoints (second derivatives)."""

    def fn(x, w):
        # x and w are leaves: their .grad is differentiable (a non-leaf's is a detached copy)
        y = ops.conv(x, w, stride, padding)
        r = np.random.default_rng(3).standard_normal(y.shape)
        y.backward(ndl.Tensor(r, device=y.device, dtype=y.dtype))
        gx, gw = x.grad, w.grad
        return ops.summation(gx * gx) + ops.summation(gw * gw)

    return fn


@pytest.mark.parametrize(
    "stride,padding,shapes",
    [
        (1, 1, ((1, 4, 5, 2), (3, 3, 2, 3))),
        (2, 1, ((1, 5, 6, 2), (3, 3, 2, 3))),
        (2, 0, ((1, 9, 9, 1), (4, 4, 1, 2))),
        (3, 2, ((1, 7, 8, 2), (2, 2, 2, 1))),
    ],
    ids=["s1_p1", "s2_p1_col2im", "s2_k4_phases", "s3_p2"],
)
def test_conv_second_derivative(stride, padding, shapes, needle_device) -> None:
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in shapes]
    check_gradients(_conv_grad_norms(stride, padding), *arrays, device=needle_device)


def test_conv_of_views_weight_gradient_uses_its_own_input(needle_device) -> None:
    """An NCHW input viewed as NHWC is copied once for the forward and the weight
    gradient; one Conv op applied twice keeps each node's gradient on its own input."""
    from needle_core.ops.conv import Conv

    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((2, 3, 5, 5)).astype(np.float32) for _ in range(2)]
    w_host = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    op = Conv(1, 1)
    w = ndl.Tensor(w_host, device=needle_device, requires_grad=True)
    outs = [op(ops.permute(ndl.Tensor(x, device=needle_device, requires_grad=False), (0, 2, 3, 1)), w) for x in xs]
    ops.summation(outs[0]).backward()
    nhwc = xs[0].transpose(0, 2, 3, 1)
    np.testing.assert_allclose(outs[0].numpy(), np_conv_nhwc(nhwc, w_host, 1, 1), rtol=1e-4, atol=1e-4)
    expected = np_conv_nhwc_grad_weight(nhwc, np.ones((2, 5, 5, 4)), 3, 1, 1)
    np.testing.assert_allclose(w.grad.numpy(), expected, rtol=1e-4, atol=1e-4)


# -- semantics beyond the table --------------------------------------------------------


def test_max_gradient_splits_ties(needle_device) -> None:
    x = ndl.Tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], device=needle_device, dtype="float32")
    ndl.max(x, 1).backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)
    y = ndl.Tensor([[4.0, 4.0], [1.0, 4.0]], device=needle_device, dtype="float32")
    ndl.max(y).backward()
    np.testing.assert_allclose(y.grad.numpy(), [[1 / 3, 1 / 3], [0, 1 / 3]], rtol=1e-6)


def test_logsumexp_is_stable(needle_device) -> None:
    x = np.array([[1000.0, 1000.0, -1000.0], [-1000.0, -1001.0, -1002.0]])
    t = ndl.Tensor(x, device=needle_device, dtype="float32")
    out = ndl.logsumexp(t, 1)
    np.testing.assert_allclose(out.numpy(), np_logsumexp(x, 1), rtol=1e-6)
    out.backward()
    np.testing.assert_allclose(t.grad.numpy(), np.exp(x - np_logsumexp(x, 1)[:, None]), rtol=1e-5, atol=1e-7)
    lsm = ndl.logsoftmax(ndl.Tensor(x, device=needle_device, dtype="float32"))
    np.testing.assert_allclose(lsm.numpy(), np_logsoftmax(x), rtol=1e-5, atol=1e-3)


def test_logsumexp_all_neg_inf_row(needle_device) -> None:
    x = np.array([[-np.inf, -np.inf, -np.inf], [0.0, 1.0, -np.inf]])
    t = ndl.Tensor(x, device=needle_device, dtype="float32")
    out = ndl.logsumexp(t, 1)
    assert np.isneginf(out.numpy()[0])
    np.testing.assert_allclose(out.numpy()[1], np.log(np.exp(0.0) + np.exp(1.0)), rtol=1e-6)
    out.backward()
    grad = t.grad.numpy()
    np.testing.assert_array_equal(grad[0], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(grad[1], [1 / (1 + np.e), np.e / (1 + np.e), 0.0], rtol=1e-5)


def test_split_returns_tensor_tuple(needle_device) -> None:
    x = np.arange(24.0).reshape(2, 3, 4)
    parts = ndl.split(ndl.Tensor(x, device=needle_device, dtype="float32"), 1)
    assert isinstance(parts, ndl.TensorTuple) and len(parts) == 3
    for i, p in enumerate(parts.tuple()):
        assert p.shape == (2, 4)
        np.testing.assert_array_equal(p.numpy(), x[:, i, :])


def test_stack_split_roundtrip_gradient(needle_device) -> None:
    ts = [ndl.Tensor(np.full((2, 3), float(i)), device=needle_device, dtype="float32") for i in range(4)]
    out = ndl.stack(ts, 1)
    assert out.shape == (2, 4, 3)
    (out * ndl.Tensor(np.arange(24.0).reshape(2, 4, 3), device=needle_device, dtype="float32")).sum().backward()
    for i, t in enumerate(ts):
        np.testing.assert_array_equal(t.grad.numpy(), np.arange(24.0).reshape(2, 4, 3)[:, i, :])


def test_split_backward_graph_is_linear(needle_device) -> None:
    """k tuple_get_item consumers of an n-tuple: O(n + k) gradient nodes, not n * k."""
    n = 64
    x = ndl.Tensor(np.ones((n, 2)), device=needle_device, dtype="float32")
    parts = ndl.split(x, 0)
    total = parts[0]
    for i in range(1, n):
        total = total + parts[i]
    total.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((n, 2)))
    grad_nodes = ndl.autograd.find_topo_sort([x.grad])
    assert len(grad_nodes) < 10 * n


def test_tensor_tuple_ops(needle_device) -> None:
    a = ndl.Tensor(np.ones((2, 2)), device=needle_device, dtype="float32")
    b = ndl.Tensor(np.full((2, 2), 2.0), device=needle_device, dtype="float32")
    tt = ndl.make_tuple(a, b)
    assert tt[0] is a and tt[1] is b  # folded: no node for make_tuple(...)[i]
    total = tt + ndl.make_tuple(b, a)
    assert len(total) == 2
    np.testing.assert_array_equal(total[0].numpy(), np.full((2, 2), 3.0))
    detached = total.detach()
    assert detached.op is None and len(detached.inputs) == 0
    assert len(tuple(tt.tuple())) == 2


def test_scalar_ops_keep_float32(needle_device) -> None:
    t = ndl.Tensor(np.ones((2, 2)), device=needle_device, dtype="float32")
    for scalar in (2, 0.5, np.float64(0.1), np.float32(3.0), np.int64(2), np.array(0.25), np.array([0.5])):
        for out in (
            t + scalar,
            scalar + t,
            t - scalar,
            scalar - t,
            t * scalar,
            scalar * t,
            t / scalar,
            scalar / t,
            t**scalar,
        ):
            assert out.dtype == "float32", (type(scalar), out.dtype)
    np.testing.assert_allclose((t * np.float64(0.1)).numpy(), np.full((2, 2), 0.1, np.float32))


def test_optional_kernels_agree_with_fallbacks(needle_device) -> None:
    """The ops through optional kernels and through primitive fallbacks agree."""
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((4, 3))
    x, w = rng.standard_normal((2, 6, 6, 3)), rng.standard_normal((3, 3, 3, 2))

    def run():
        ta, tb = _tensors([a, b], needle_device)
        tx, tw = _tensors([x, w], needle_device)
        outs = [
            ta @ tb,
            ndl.logsumexp(ta, (1, 3)),
            ndl.sigmoid(ta),
            ndl.relu(ta),
            -ta,
            ta ** tb.sum(),
            ndl.conv(tx, tw, 2, 1),
        ]
        loss = sum(o.sum() for o in outs[:-1]) + outs[-1].sum()
        loss.backward()
        return [o.numpy() for o in outs] + [t.grad.numpy() for t in (ta, tx, tw)]

    with_kernels = run()
    with ndl.backend_ndarray.optional_kernels_disabled(needle_device):
        fallback = run()
    for got, ref in zip(with_kernels, fallback, strict=False):
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


# -- bad input: clear errors naming what was given -------------------------------------


def _t(shape, device):
    return ndl.Tensor(np.zeros(shape), device=device, dtype="float32")


def test_error_broadcast_names_shapes(needle_device) -> None:
    for op in (ndl.add, ndl.multiply, ndl.divide, ndl.power):
        with pytest.raises(ValueError, match=r"\(2, 3\).*\(4,\)"):
            op(_t((2, 3), needle_device), _t((4,), needle_device))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 3\)"):
        ndl.broadcast_to(_t((2, 3), needle_device), (3, 3))


def test_error_reshape_names_shapes(needle_device) -> None:
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 2\)"):
        ndl.reshape(_t((2, 3), needle_device), (4, 2))


def test_error_axes(needle_device) -> None:
    x = _t((2, 3), needle_device)
    for fn in (
        lambda: ndl.summation(x, 2),
        lambda: ndl.max(x, (0, 5)),
        lambda: ndl.logsumexp(x, -3),
        lambda: ndl.transpose(x, (0, 2)),
        lambda: ndl.flip(x, (3,)),
        lambda: ndl.split(x, 2),
    ):
        with pytest.raises(ValueError, match="out of range"):
            fn()
    with pytest.raises(ValueError, match="repeated"):
        ndl.summation(x, (1, -1))


def test_error_matmul_names_shapes(needle_device) -> None:
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        ndl.matmul(_t((2, 3), needle_device), _t((4, 5), needle_device))
    with pytest.raises(ValueError, match=r"\(2, 3, 4\).*\(3, 4, 5\)"):
        ndl.matmul(_t((2, 3, 4), needle_device), _t((3, 4, 5), needle_device))


def test_error_conv_and_stack(needle_device) -> None:
    with pytest.raises(ValueError, match=r"\(3, 3, 2, 4\).*\(1, 5, 5, 3\)"):
        ndl.conv(_t((1, 5, 5, 3), needle_device), _t((3, 3, 2, 4), needle_device))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        ndl.stack([_t((2, 3), needle_device), _t((3, 2), needle_device)], 0)


def test_error_bad_scalar(needle_device) -> None:
    with pytest.raises(TypeError, match="scalar"):
        ndl.add_scalar(_t((2,), needle_device), "x")


def test_error_different_devices_names_both(needle_device) -> None:
    from needle_core.device import Device
    from needle_core.kernels import ALL_KERNELS

    table = {n: getattr(needle_device, n) for n in ALL_KERNELS if getattr(needle_device, n, None) is not None}
    other = Device("second_test_device", 0, table)
    a = _t((2, 2), needle_device)
    b = ndl.Tensor(np.zeros((2, 2)), device=other, dtype="float32")
    for fn in (ndl.add, ndl.multiply, ndl.matmul, ndl.divide):
        with pytest.raises(ValueError, match=rf"{re.escape(repr(str(needle_device)))}.*second_test_device"):
            fn(a, b)
        with pytest.raises(ValueError) as info:
            fn(b, a)
        assert repr(str(needle_device)) in str(info.value) and "second_test_device" in str(info.value)
