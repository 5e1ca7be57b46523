"""Code written for the CMU 10-414/714 homeworks (hw1-hw4) runs unchanged on needle.

Every test below is written the way the course's public tests and homework code are
written (their idioms: import lines, the in-place
``.flat[j] += eps`` gradient checker, ``_handle.ptr()`` view checks, seeded init), and
checks the result against a NumPy reference computed here from the formulas in docs/api.md.
The only lines that differ from course code are the imports of the course's ``apps``
files (``from simple_ml import *`` becomes ``from needle.apps.simple_ml import *``).
Tests taking ``device`` run on each device the suite is given (``--needle-device``,
``NEEDLE_TEST_DEVICES``); the course's import-time device lists are tested in the
project's tests/test_course_compat_default_device.py.
"""
# ruff: noqa: F403, F405  (the course's star imports of its apps files are the point)

from __future__ import annotations

import gc
import math

import needle as ndl
import needle.nn as nn
import numpy as np
import pytest
from needle import backend_ndarray as nd
from needle.apps.mlp_resnet import *
from needle.apps.simple_ml import *

from needle_nn.testing.support import assert_linear_course_init, kaiming_uniform_ref, shipped_mnist_or_skip

@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same NumPy RNG state (tests that draw init seed again)."""
    np.random.seed(0)


@pytest.fixture
def device(needle_device):
    """Course tests take a ``device`` argument; here it is each registry device."""
    return needle_device


def _float64(device) -> bool:
    return "float64" in device.dtypes


# -- hw1: the numerical gradient checker, course style ---------------------------------
def gradient_check(f, *args, tol=1e-6, eps=1e-4, backward=False, weights=None, **kwargs):
    """Central differences, perturbing each input in place through ``.flat``.

    ``weights`` (hw4's ``backward_check``) turns the output into ``sum(out * c)`` so the
    adjoint is not all ones; without it the adjoint is ``ones`` (hw1's checker).
    """
    out = f(*args, **kwargs)
    c = np.ones(out.shape) if weights is None else weights
    numerical = [np.zeros(a.shape) for a in args]
    for i in range(len(args)):
        for j in range(args[i].realize_cached_data().size):
            args[i].realize_cached_data().flat[j] += eps
            f_plus = float((f(*args, **kwargs).numpy() * c).sum())
            args[i].realize_cached_data().flat[j] -= 2 * eps
            f_minus = float((f(*args, **kwargs).numpy() * c).sum())
            args[i].realize_cached_data().flat[j] += eps
            numerical[i].flat[j] = (f_plus - f_minus) / (2 * eps)
    c_tensor = ndl.Tensor(c, device=args[0].device)
    if backward:
        for a in args:
            a.grad = None
        (f(*args, **kwargs) * c_tensor).sum().backward()
        computed = [a.grad.numpy() for a in args]
    else:
        computed = [g.numpy() for g in out.op.gradient_as_tuple(c_tensor, out)]
    error = sum(np.linalg.norm(computed[i] - numerical[i]) for i in range(len(args)))
    assert error < tol, f"gradient error {error} >= {tol}"
    return computed


def _grad_inputs(device, *shapes, positive=False):
    """Course-style inputs: float64 NumPy draws, kept float64 where the device holds it."""
    arrays = [np.random.randn(*s) for s in shapes]
    if positive:
        arrays = [np.abs(a) + 0.5 for a in arrays]
    return [ndl.Tensor(a, device=device) for a in arrays]


def _grad_tolerances(device):
    # hw1's 1e-6 needs float64 (docs/api.md §3); float32 devices get float32-sized steps
    return (1e-6, 1e-4) if _float64(device) else (2e-2, 1e-2)


# single ops: the checker's default form asks the last op for its inputs' adjoints
_GRAD_CASES = {
    "divide": (lambda a, b: a / b, [(5, 4), (5, 4)], True),
    "divide_scalar": (lambda a: ndl.divide_scalar(a, scalar=-2.3), [(5, 4)], False),
    "matmul": (lambda a, b: ndl.matmul(a, b), [(5, 4), (4, 3)], False),
    "matmul_batched": (lambda a, b: a @ b, [(2, 3, 4), (4, 2)], False),
    "summation": (lambda a: ndl.summation(a, axes=(1,)), [(5, 4)], False),
    "summation_all": (lambda a: ndl.summation(a), [(3, 4)], False),
    "broadcast_to": (lambda a: ndl.broadcast_to(a, shape=(3, 3, 4)), [(3, 1, 4)], False),
    "reshape": (lambda a: ndl.reshape(a, shape=(4, 5)), [(5, 4)], False),
    "negate": (lambda a: ndl.negate(a), [(2, 3)], False),
    "transpose": (lambda a: ndl.transpose(a, axes=(0, 2)), [(2, 3, 4)], False),
    "log": (lambda a: ndl.log(a), [(4, 3)], True),
    "exp": (lambda a: ndl.exp(a), [(4, 3)], False),
    "relu": (lambda a: ndl.relu(a), [(4, 3)], False),
    "tanh": (lambda a: ndl.tanh(a), [(4, 3)], False),
    "power_scalar": (lambda a: ndl.power_scalar(a, scalar=3), [(4, 3)], False),
    "logsumexp": (lambda a: ndl.logsumexp(a, axes=(1,)), [(4, 5)], False),
}


@pytest.mark.parametrize("name", list(_GRAD_CASES))
def test_course_gradient_checker_per_op(name, device):
    np.random.seed(0)
    fn, shapes, positive = _GRAD_CASES[name]
    tol, eps = _grad_tolerances(device)
    args = _grad_inputs(device, *shapes, positive=positive)
    out = fn(*args)
    weights = np.random.randn(*out.shape)
    gradient_check(fn, *args, tol=tol, eps=eps, weights=weights)


def test_course_gradient_checker_backward(device):
    # hw1's backward=True form: .sum().backward() through a small composite graph
    np.random.seed(1)
    tol, eps = _grad_tolerances(device)
    a, b, c = _grad_inputs(device, (4, 5), (5, 3), (1, 3))
    gradient_check(lambda a, b, c: ndl.relu(a @ b + c) * (a @ b), a, b, c, tol=tol, eps=eps, backward=True)
    # hw4's stack: a list of tensors in, gradients split back to each of them
    x, y = _grad_inputs(device, (3, 4), (3, 4))
    weights = np.random.randn(3, 2, 4)
    gradient_check(lambda *xs: ndl.stack(list(xs), axis=1), x, y, tol=tol, eps=eps, backward=True, weights=weights)


class _Cube(ndl.autograd.TensorOp):
    """A homework-style op: ``compute`` on NDArrays, ``gradient`` with Tensor ops."""

    def __init__(self, wrong_gradient: bool = False) -> None:
        self.wrong_gradient = wrong_gradient

    def compute(self, a):
        return a * a * a

    def gradient(self, out_grad, node):
        (a,) = node.inputs
        return out_grad * (a * a * (2.0 if self.wrong_gradient else 3.0))


def test_student_defined_op_and_checker_sensitivity(device):
    np.random.seed(3)
    tol, eps = _grad_tolerances(device)
    (x,) = _grad_inputs(device, (3, 4))
    np.testing.assert_allclose(_Cube()(x).numpy(), x.numpy() ** 3, rtol=1e-5)
    gradient_check(lambda a: _Cube()(a), x, tol=tol, eps=eps, backward=True)
    with pytest.raises(AssertionError, match="gradient error"):  # the checker does catch a wrong adjoint
        gradient_check(lambda a: _Cube(wrong_gradient=True)(a), x, tol=tol, eps=eps)


def test_flat_perturbation_writes_through(device):
    np.random.seed(2)
    host = np.random.randn(3, 4).astype(np.float32)
    t = ndl.Tensor(host, device=device)
    t.realize_cached_data().flat[5] += 0.5
    t.realize_cached_data().flat[0] -= 0.25
    expected = host.copy()
    expected.flat[5] += np.float32(0.5)
    expected.flat[0] -= np.float32(0.25)
    np.testing.assert_allclose(t.numpy(), expected, rtol=1e-6, atol=1e-6)
    assert t.realize_cached_data().size == 12


# -- hw1: graph node lists and the live-tensor counter -------------------------------
def test_find_topo_sort_node_order(device):
    a_val, b_val = np.array([[0.7]]), np.array([[-1.3]])
    a1, b1 = ndl.Tensor(a_val, device=device), ndl.Tensor(b_val, device=device)
    c1 = 3 * a1 * a1 + 4 * b1 * a1 - a1
    topo = ndl.autograd.find_topo_sort([c1])
    # post-order DFS, inputs left to right, of the course's desugaring (docs/api.md §3)
    a, b = a_val, b_val
    expected_values = [a, 3 * a, 3 * a * a, b, 4 * b, 4 * b * a, 3 * a * a + 4 * b * a, -a, 3 * a * a + 4 * b * a - a]
    expected_ops = [None, ndl.ops.MulScalar, ndl.ops.EWiseMul, None, ndl.ops.MulScalar, ndl.ops.EWiseMul,
                    ndl.ops.EWiseAdd, ndl.ops.Negate, ndl.ops.EWiseAdd]  # fmt: skip
    assert len(topo) == len(expected_values)
    assert topo[0] is a1 and topo[3] is b1 and topo[-1] is c1
    for node, op in zip(topo, expected_ops, strict=True):
        assert (node.op is None) if op is None else isinstance(node.op, op)
    np.testing.assert_allclose(np.array([x.numpy() for x in topo]), np.array(expected_values), rtol=1e-6, atol=1e-6)


def test_tensor_counter_tracks_live_values(device):
    gc.collect()
    before = ndl.autograd.TENSOR_COUNTER
    x = ndl.Tensor(np.ones((2, 2)), device=device)
    y = (x + 1) * x
    assert ndl.autograd.TENSOR_COUNTER == before + 3
    del x, y
    assert ndl.autograd.TENSOR_COUNTER == before


@pytest.mark.parametrize("make_opt", [
    lambda p: ndl.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda p: ndl.optim.Adam(p, lr=0.01, weight_decay=0.01),
], ids=["sgd", "adam"])  # fmt: skip
def test_tensor_counter_flat_across_optimiser_steps(make_opt, device):
    # hw2's memory checks: training builds no graph that outlives an iteration
    np.random.seed(3)
    model = nn.Sequential(nn.Linear(6, 8, device=device), nn.ReLU(), nn.Linear(8, 3, device=device))
    opt = make_opt(model.parameters())
    X = ndl.Tensor(np.random.randn(16, 6), device=device, dtype="float32")
    y = ndl.Tensor(np.random.randint(0, 3, size=16), device=device)
    counts, growth = [], []
    gc.collect()  # earlier tests' garbage must not be collected mid-loop
    gc.disable()  # each iteration's graph is freed by reference counting: backward leaves no cycles
    try:
        for _ in range(5):
            opt.reset_grad()
            loss = nn.SoftmaxLoss()(model(X), y)
            loss.backward()
            before_step = ndl.autograd.TENSOR_COUNTER
            opt.step()
            growth.append(ndl.autograd.TENSOR_COUNTER - before_step)
            del loss
            counts.append(ndl.autograd.TENSOR_COUNTER)
    finally:
        gc.enable()
    assert growth[1:] == [0] * 4, f"optimiser steps left new live tensors: {growth}"
    assert counts[1:] == [counts[1]] * 4, f"live tensors grow across iterations: {counts}"
    assert all(p.is_leaf() for p in model.parameters())


# -- hw1/hw4: Tensor construction from NDArrays, the course device lists ------------------
def test_tensor_from_nd_array_on_device(device):
    host = np.random.randn(3, 5).astype(np.float32)
    t = ndl.Tensor(nd.array(host), device=device)
    assert t.device == device and t.shape == (3, 5) and t.dtype == "float32"
    assert isinstance(t.realize_cached_data(), nd.NDArray)
    np.testing.assert_array_equal(t.numpy(), host)
    np.testing.assert_allclose((t * 2 + 1).numpy(), host * 2 + 1, rtol=1e-6)


# -- hw3: NDArray idioms --------------------------------------------------------------------
def compare_strides(a_np, a_nd):
    assert tuple(s // a_np.itemsize for s in a_np.strides) == a_nd.strides


def check_same_memory(original, view):
    assert original._handle.ptr() == view._handle.ptr()


_VIEW_CASES = {
    "permute": ((4, 5), lambda X: X.transpose(), lambda X: X.permute((1, 0))),
    "broadcast_to": ((4, 1, 4), lambda X: np.broadcast_to(X, (4, 5, 4)), lambda X: X.broadcast_to((4, 5, 4))),
    "reshape": ((4, 3), lambda X: X.reshape(2, 2, 3), lambda X: X.reshape((2, 2, 3))),
    "slice": ((8, 8), lambda X: X[4:, 2:7], lambda X: X[4:, 2:7]),
    "slice_nd": ((6, 8, 2, 2), lambda X: X[1:3, 5:8, 1:2, 0:1], lambda X: X[1:3, 5:8, 1:2, 0:1]),
    "permute_slice": ((7, 8), lambda X: X.transpose()[3:7, 2:5], lambda X: X.permute((1, 0))[3:7, 2:5]),
    "step_slice": ((9, 7), lambda X: X[1:8:3, ::2], lambda X: X[1:8:3, ::2]),
}


@pytest.mark.parametrize("name", list(_VIEW_CASES))
def test_views_share_memory_and_compact(name, device):
    shape, np_fn, nd_fn = _VIEW_CASES[name]
    _A = np.random.randint(low=0, high=10, size=shape)
    A = nd.array(_A, device=device)
    view = nd_fn(A)
    check_same_memory(A, view)
    compare_strides(np_fn(_A), view)
    lhs = view.compact()
    assert lhs.is_compact()
    np.testing.assert_allclose(lhs.numpy(), np_fn(_A), rtol=1e-5, atol=1e-5)
    assert A.compact() is A or A.compact()._handle.ptr() == A._handle.ptr()


def test_getitem_course_semantics(device):
    _A = np.random.randn(6, 5)
    A = nd.array(_A, device=device)
    row = A[1, :]
    assert row.shape == (1, 5)  # an int index keeps its axis
    np.testing.assert_allclose(row.numpy(), _A[1:2, :], rtol=1e-6)
    corner = A[-1, -2]
    assert corner.shape == (1, 1)
    np.testing.assert_allclose(corner.numpy(), _A[5:6, 3:4], rtol=1e-6)
    for fn in (lambda X: X[3:4, 3:4], lambda X: X[1:2, 1:3], lambda X: X[3:4, 1:4], lambda X: X[1:4, 3:4]):
        lhs, rhs = fn(_A), fn(A)
        np.testing.assert_allclose(lhs, rhs.numpy(), rtol=1e-6)
        compare_strides(lhs, rhs)
        check_same_memory(A, rhs)
    with pytest.raises(IndexError):
        A[1]  # noqa: B018  (course NDArrays need one index per dimension)


@pytest.mark.parametrize("params", [
    {"lhs_shape": (4, 5, 6), "lhs_slices": (slice(1, 2), slice(3, 4), slice(4, 6)),
     "rhs_shape": (7, 7, 7), "rhs_slices": (slice(0, 1), slice(2, 3), slice(5, 7))},
    {"lhs_shape": (8, 8), "lhs_slices": (slice(1, 7, 2), slice(0, 8, 3)),
     "rhs_shape": (4, 5), "rhs_slices": (slice(0, 3), slice(1, 4))},
], ids=["3d", "strided"])  # fmt: skip
def test_setitem_ewise(params, device):
    _A = np.random.randn(*params["lhs_shape"])
    _B = np.random.randn(*params["rhs_shape"])
    A, B = nd.array(_A, device=device), nd.array(_B, device=device)
    start_ptr = A._handle.ptr()
    A[params["lhs_slices"]] = B[params["rhs_slices"]]
    _A[params["lhs_slices"]] = _B[params["rhs_slices"]]
    assert A._handle.ptr() == start_ptr, "setitem must write in place"
    compare_strides(_A, A)
    np.testing.assert_allclose(A.numpy(), _A, rtol=1e-6, atol=1e-6)


def test_setitem_scalar_and_same_size_array(device):
    _A = np.random.randn(5, 6)
    A = nd.array(_A, device=device)
    start_ptr = A._handle.ptr()
    A[1:4, 2:5] = 4.0
    _A[1:4, 2:5] = 4.0
    A[0, :] = nd.array(np.arange(6.0), device=device)  # (6,) into a (1, 6) view: same element count
    _A[0, :] = np.arange(6.0)
    assert A._handle.ptr() == start_ptr
    np.testing.assert_allclose(A.numpy(), _A, rtol=1e-6, atol=1e-6)


def test_ndarray_make_is_a_view(device):
    _A = np.arange(24, dtype=np.float32)
    A = nd.NDArray(_A, device=device)
    B = nd.NDArray.make((3, 4), (1, 3), device, A._handle, 2)
    check_same_memory(A, B)
    expected = np.lib.stride_tricks.as_strided(_A[2:], shape=(3, 4), strides=(4, 12))
    np.testing.assert_array_equal(B.numpy(), expected)
    assert not B.is_compact()
    with pytest.raises(ValueError):
        B.reshape((12,))  # course: reshape needs a compact array
    np.testing.assert_array_equal(B.compact().reshape((12,)).numpy(), expected.reshape(-1))
    C = nd.NDArray.make((2, 3), device=device)  # no handle: a new compact buffer
    assert C.is_compact() and C.shape == (2, 3) and C.strides == (3, 1)


def test_ndarray_constructor_elementwise_and_reductions(device):
    _A = np.random.randn(3, 4, 5)
    A = nd.NDArray(np.array(_A), device=device)
    assert A.device == device and A.shape == (3, 4, 5) and A.ndim == 3 and A.size == 60
    rtol = 1e-5
    np.testing.assert_allclose((A * 2 + 1).numpy(), _A * 2 + 1, rtol=rtol, atol=1e-6)
    np.testing.assert_allclose((A / (A.exp() + 1)).numpy(), _A / (np.exp(_A) + 1), rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(A.maximum(0.1).numpy(), np.maximum(_A, 0.1), rtol=rtol)
    np.testing.assert_allclose((A >= 0).numpy(), (_A >= 0).astype(float))
    for axis in (0, 1, 2):
        np.testing.assert_allclose(A.sum(axis=axis).numpy(), _A.sum(axis=axis), rtol=rtol, atol=1e-5)
        np.testing.assert_allclose(
            A.sum(axis=axis, keepdims=True).numpy(), _A.sum(axis=axis, keepdims=True), rtol=rtol, atol=1e-5
        )
        np.testing.assert_allclose(A.max(axis=axis, keepdims=True).numpy(), _A.max(axis=axis, keepdims=True),
                                   rtol=rtol)  # fmt: skip
    np.testing.assert_allclose(A.sum(axis=(0, 2)).numpy(), _A.sum(axis=(0, 2)), rtol=rtol, atol=1e-5)
    M, N = nd.array(_A[0], device=device), nd.array(_A[1].T, device=device)
    np.testing.assert_allclose((M @ N).numpy(), _A[0] @ _A[1].T, rtol=rtol, atol=1e-5)


def test_ndarray_flip_and_pad(device):
    _A = np.random.randn(2, 3, 4)
    A = nd.NDArray(_A, device=device)
    for axes in ((0,), (1, 2), (0, 1, 2)):
        np.testing.assert_allclose(A.flip(axes).numpy(), np.flip(_A, axes), rtol=1e-6)
    np.testing.assert_allclose(nd.flip(A, (2,)).numpy(), np.flip(_A, (2,)), rtol=1e-6)
    padding = ((0, 0), (1, 2), (2, 1))
    B = A.pad(padding)
    np.testing.assert_allclose(B.numpy(), np.pad(_A, padding), rtol=1e-6)
    assert B.is_compact()
    # hw4's conv pads NHWC on H and W, then flips the kernel over its spatial axes
    T = ndl.Tensor(_A, device=device)
    np.testing.assert_allclose(ndl.flip(T, axes=(0, 1)).numpy(), np.flip(_A, (0, 1)), rtol=1e-6)


_EWISE_FNS = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b, "div": lambda a, b: a / b,
    "eq": lambda a, b: a == b, "ge": lambda a, b: a >= b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
}  # fmt: skip
_SCALAR_FNS = {
    "add": lambda a, c: a + c, "radd": lambda a, c: c + a, "sub": lambda a, c: a - c, "rsub": lambda a, c: c - a,
    "mul": lambda a, c: a * c, "div": lambda a, c: a / c, "rdiv": lambda a, c: c / a, "pow": lambda a, c: (a * a) ** c,
    "gt": lambda a, c: a > c, "le": lambda a, c: a <= c,
}  # fmt: skip


def test_ndarray_ewise_and_scalar_fns(device):
    # hw3's test_ewise_fn / test_scalar_fn over a non-compact (permuted) operand
    _A, _B = np.random.randn(5, 4).astype(np.float32), np.random.randn(4, 5).astype(np.float32).T
    _A[0, 0] = _B[0, 0]  # one tie for the comparisons
    A, B = nd.array(_A, device=device), nd.array(_B.T, device=device).permute((1, 0))
    for name, fn in _EWISE_FNS.items():
        expected = np.asarray(fn(_A, _B), dtype=np.float64)
        np.testing.assert_allclose(fn(A, B).numpy(), expected, rtol=1e-5, atol=1e-6, err_msg=name)
    for name, fn in _SCALAR_FNS.items():
        expected = np.asarray(fn(_A, np.float32(1.7)), dtype=np.float64)
        np.testing.assert_allclose(fn(A, 1.7).numpy(), expected, rtol=1e-5, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(A.maximum(B).numpy(), np.maximum(_A, _B), rtol=1e-6)
    np.testing.assert_allclose((-A).numpy(), -_A, rtol=1e-6)
    np.testing.assert_allclose(A.tanh().numpy(), np.tanh(_A), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose((A.exp() + 1).log().numpy(), np.log(np.exp(_A) + 1), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("m,n,p", [(1, 2, 3), (3, 4, 5), (5, 4, 3), (8, 8, 8), (16, 16, 16), (72, 73, 74)])
def test_ndarray_matmul_sizes(m, n, p, device):
    _A, _B = np.random.randn(m, n), np.random.randn(n, p)
    C = nd.array(_A, device=device) @ nd.array(_B, device=device)
    np.testing.assert_allclose(C.numpy(), _A @ _B, rtol=1e-4, atol=1e-4)


def test_ndarray_as_strided_and_to(device):
    _A = np.arange(12, dtype=np.float32)
    A = nd.array(_A, device=device)
    B = A.as_strided((3, 3), (3, 1))  # overlapping windows
    check_same_memory(A, B)
    np.testing.assert_array_equal(B.numpy(), np.lib.stride_tricks.as_strided(_A, (3, 3), (12, 4)))
    C = nd.array(_A.reshape(3, 4)).to(device)
    assert C.device == device
    np.testing.assert_array_equal(C.numpy(), _A.reshape(3, 4))


def test_device_course_methods(device):
    # hw3/hw4 init code calls these on the device object
    np.random.seed(11)
    r = device.rand(3, 2)
    np.random.seed(11)
    np.testing.assert_array_equal(r.numpy(), np.random.rand(3, 2).astype(np.float32))
    n = device.randn(4)
    assert isinstance(n, nd.NDArray) and n.shape == (4,) and n.device == device
    np.testing.assert_array_equal(device.one_hot(4, np.array([2, 0])).numpy(), np.eye(4)[[2, 0]])
    np.testing.assert_array_equal(device.full((2, 3), 1.5).numpy(), np.full((2, 3), 1.5))
    assert device.empty((2, 3)).shape == (2, 3)
    assert device.enabled() and isinstance(device.name, str)


def test_ndarray_subclass(device):
    class TracedArray(nd.NDArray):
        def describe(self) -> str:
            return f"{type(self).__name__}{self.shape}"

    _A = np.random.randn(3, 2).astype(np.float32)
    S = TracedArray(_A, device=device)
    assert isinstance(S, nd.NDArray) and S.describe() == "TracedArray(3, 2)"
    np.testing.assert_array_equal(S.numpy(), _A)
    np.testing.assert_allclose((S + S).numpy(), _A + _A, rtol=1e-6)
    np.testing.assert_allclose(S.permute((1, 0)).compact().numpy(), _A.T)
    np.testing.assert_array_equal(ndl.Tensor(S, device=device).numpy(), _A)


def test_cpu_matmul_tiled(device):
    if device != nd.cpu():
        pytest.skip("matmul_tiled is a kernel of the cpu backend")
    cpu = nd.cpu()
    assert hasattr(cpu, "matmul_tiled")
    t = cpu.__tile_size__
    m, n, p = 2, 3, 2  # in tiles
    A = nd.array(np.random.randn(m, n, t, t), device=cpu)
    B = nd.array(np.random.randn(n, p, t, t), device=cpu)
    C = nd.NDArray.make((m, p, t, t), device=cpu)
    cpu.matmul_tiled(A._handle, B._handle, C._handle, m * t, n * t, p * t)

    def untile(X, rows, cols):
        return X.numpy().transpose(0, 2, 1, 3).reshape(rows * t, cols * t)

    np.testing.assert_allclose(untile(C, m, p), untile(A, m, n) @ untile(B, n, p), rtol=1e-4, atol=1e-4)


# -- hw2: init with seeds, against the documented formulas (docs/api.md §4) ----------------------
def _uniform(shape, low, high):
    return np.random.rand(*shape) * (high - low) + low


def _xavier_uniform_ref(fan_in, fan_out, gain):
    bound = gain * math.sqrt(6 / (fan_in + fan_out))
    return _uniform((fan_in, fan_out), -bound, bound)


_INIT_CASES = {
    "rand": (lambda d: ndl.init.rand(3, 4, low=-2, high=3, device=d), lambda: _uniform((3, 4), -2, 3)),
    "randn": (lambda d: ndl.init.randn(4, 2, mean=1.5, std=0.5, device=d), lambda: np.random.randn(4, 2) * 0.5 + 1.5),
    "randb": (lambda d: ndl.init.randb(5, 6, p=0.3, device=d), lambda: np.random.rand(5, 6) <= 0.3),
    "constant": (lambda d: ndl.init.constant(2, 3, c=2.5, device=d), lambda: np.full((2, 3), 2.5)),
    "ones_zeros": (lambda d: ndl.init.ones(2, device=d) - ndl.zeros(2, device=d), lambda: np.ones(2)),
    "one_hot": (
        lambda d: ndl.init.one_hot(4, ndl.Tensor([3, 0, 2], device=d), device=d),
        lambda: np.eye(4)[[3, 0, 2]],
    ),
    "xavier_uniform": (
        lambda d: ndl.init.xavier_uniform(3, 5, gain=1.5, device=d),
        lambda: _xavier_uniform_ref(3, 5, 1.5),
    ),
    "xavier_normal": (
        lambda d: ndl.init.xavier_normal(3, 5, gain=0.4, device=d),
        lambda: np.random.randn(3, 5) * (0.4 * math.sqrt(2 / (3 + 5))),
    ),
    "kaiming_uniform": (lambda d: ndl.init.kaiming_uniform(3, 5, device=d), lambda: kaiming_uniform_ref(3, (3, 5))),
    "kaiming_uniform_shape": (
        lambda d: ndl.init.kaiming_uniform(12, 8, shape=(2, 2, 3, 4), device=d),
        lambda: kaiming_uniform_ref(12, (2, 2, 3, 4)),
    ),
    "kaiming_normal": (
        lambda d: ndl.init.kaiming_normal(6, 2, device=d),
        lambda: np.random.randn(6, 2) * (math.sqrt(2) / math.sqrt(6)),
    ),
}


@pytest.mark.parametrize("name", list(_INIT_CASES))
def test_init_seeded_draws(name, device):
    make, reference = _INIT_CASES[name]
    np.random.seed(42)
    out = make(device)
    np.random.seed(42)
    expected = reference().astype(np.float32)
    assert out.dtype == "float32" and out.device == device and out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6, atol=1e-7)


def test_init_bit_identical_across_devices(device):
    oracle = ndl.cpu_numpy()
    if not oracle.enabled():
        pytest.skip("the numpy oracle backend is not installed")
    draws = []
    for dev in (device, oracle):
        np.random.seed(7)
        draws.append((ndl.init.kaiming_uniform(5, 4, device=dev).numpy(), ndl.init.randn(3, 3, device=dev).numpy()))
    for here, there in zip(*draws, strict=True):
        np.testing.assert_array_equal(here, there)


def test_linear_seeded_on_device(device):
    np.random.seed(0)
    f = nn.Linear(7, 4, device=device)
    assert f.weight.device == device and f.weight.shape == (7, 4) and f.bias.shape == (1, 4)
    w, b = assert_linear_course_init(f, 0)
    x = np.random.randn(5, 7)
    np.testing.assert_allclose(f(ndl.Tensor(x, device=device)).numpy(), x @ w + b, rtol=1e-5, atol=1e-5)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_softmax_loss_value_and_gradient(device):
    np.random.seed(5)
    n, k = 6, 4
    z = np.random.randn(n, k)
    y = np.random.randint(0, k, size=(n,)).astype(np.uint8)
    logits = ndl.Tensor(z, device=device)
    loss = nn.SoftmaxLoss()(logits, ndl.Tensor(y, device=device))
    lse = np.log(np.exp(z).sum(axis=1))
    np.testing.assert_allclose(loss.numpy(), np.mean(lse - z[np.arange(n), y]), rtol=1e-5, atol=1e-6)
    loss.backward()
    expected_grad = (_softmax(z) - np.eye(k)[y]) / n
    np.testing.assert_allclose(logits.grad.numpy(), expected_grad, rtol=1e-4, atol=1e-6)


def test_batchnorm1d_train_then_eval(device):
    np.random.seed(6)
    dim, momentum, eps = 4, 0.1, 1e-5
    bn = nn.BatchNorm1d(dim, device=device)
    running_mean, running_var = np.zeros(dim), np.ones(dim)
    for _ in range(2):
        x = np.random.randn(5, dim) * 2 + 1
        out = bn(ndl.Tensor(x, device=device)).numpy()
        mean, var = x.mean(axis=0), x.var(axis=0)  # biased, as the course
        np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + eps), rtol=1e-4, atol=1e-4)
        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var = (1 - momentum) * running_var + momentum * var
    np.testing.assert_allclose(bn.running_mean.numpy(), running_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn.running_var.numpy(), running_var, rtol=1e-5, atol=1e-6)
    bn.eval()
    x = np.random.randn(3, dim)
    expected = (x - running_mean) / np.sqrt(running_var + eps)
    np.testing.assert_allclose(bn(ndl.Tensor(x, device=device)).numpy(), expected, rtol=1e-4, atol=1e-4)
    assert bn.running_mean.dtype == "float32" and not bn.training


@pytest.mark.parametrize("optimizer,kwargs", [
    (ndl.optim.SGD, {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.01}),
    (ndl.optim.Adam, {"lr": 0.001, "weight_decay": 0.01}),
], ids=["sgd", "adam"])  # fmt: skip
def test_optimiser_step_keeps_gradients(optimizer, kwargs, device):
    # hw2's learn_model_1d idiom: split cached_data with NumPy, check .grad across step()
    np.random.seed(42)
    model = nn.Sequential(nn.Linear(8, 16, device=device), nn.ReLU(), nn.Linear(16, 3, device=device))
    X = ndl.Tensor(np.random.rand(64, 8), device=device).cached_data
    y = ndl.Tensor(np.random.randint(0, 3, size=(64,)), device=device).cached_data.astype(np.uint8)
    loss_func = nn.SoftmaxLoss()
    opt = optimizer(model.parameters(), **kwargs)
    for X0, y0 in zip(np.array_split(X, 4), np.array_split(y, 4), strict=True):
        opt.reset_grad()
        X0, y0 = ndl.Tensor(X0, device=device, dtype="float32"), ndl.Tensor(y0, device=device)
        loss = loss_func(model(X0), y0)
        loss.backward()
        grad_before = model.parameters()[0].grad.detach().cached_data
        grad_copy = grad_before.numpy().copy()
        weight_before = model.parameters()[0].numpy().copy()
        opt.step()
        grad_after = model.parameters()[0].grad.detach().cached_data
        np.testing.assert_allclose(grad_before, grad_after, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(grad_after.numpy(), grad_copy)
        assert not np.array_equal(model.parameters()[0].numpy(), weight_before), "step() changed no weight"
        assert all(p.dtype == "float32" for p in model.parameters())


def test_sgd_and_adam_single_step_formulas(device):
    np.random.seed(8)
    w0, g = np.random.randn(3, 2), np.random.randn(3, 2)
    lr, wd, mom, b1, b2, eps = 0.1, 0.05, 0.9, 0.9, 0.999, 1e-8
    for opt_cls, kwargs in (
        (ndl.optim.SGD, {"lr": lr, "momentum": mom, "weight_decay": wd}),
        (ndl.optim.Adam, {"lr": lr, "beta1": b1, "beta2": b2, "eps": eps, "weight_decay": wd}),
    ):
        p = nn.Parameter(ndl.Tensor(w0, device=device, dtype="float32"))
        opt = opt_cls([p], **kwargs)
        w, m, v = w0.astype(np.float32).astype(np.float64), 0.0, 0.0
        for t in (1, 2):
            p.grad = ndl.Tensor(g * t, device=device, dtype="float32")
            opt.step()
            gt = (g * t).astype(np.float32) + wd * w
            if opt_cls is ndl.optim.SGD:
                m = mom * m + (1 - mom) * gt
                w = w - lr * m
            else:
                m = b1 * m + (1 - b1) * gt
                v = b2 * v + (1 - b2) * gt**2
                w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
            np.testing.assert_allclose(p.numpy(), w, rtol=1e-5, atol=1e-6, err_msg=f"{opt_cls.__name__} t={t}")


def test_dropout_seeded(device):
    np.random.seed(12)
    x = np.random.randn(6, 5)
    drop = nn.Dropout(p=0.3)
    np.random.seed(13)
    out = drop(ndl.Tensor(x, device=device)).numpy()
    np.random.seed(13)
    mask = np.random.rand(6, 5) <= 0.7  # randb(p = 1 - p)
    np.testing.assert_allclose(out, x * mask / 0.7, rtol=1e-5, atol=1e-6)
    drop.eval()
    np.testing.assert_allclose(drop(ndl.Tensor(x, device=device)).numpy(), x, rtol=1e-6)


def test_float64_inputs_into_float32_model(device):
    # hw2 feeds float64 NumPy draws (and float64 out_grads) to float32 models
    np.random.seed(14)
    f = nn.Linear(3, 2, device=device)
    x = np.random.randn(4, 3)
    out = f(ndl.Tensor(x, device=device))
    w, b = f.weight.numpy(), f.bias.numpy()
    np.testing.assert_allclose(out.numpy(), x @ w + b, rtol=1e-5, atol=1e-5)
    g = np.random.randn(4, 2)
    out.backward(ndl.Tensor(g, device=device))
    np.testing.assert_allclose(f.weight.grad.numpy(), x.T @ g, rtol=1e-5, atol=1e-5)
    ndl.optim.SGD(f.parameters(), lr=0.5).step()
    assert f.weight.dtype == "float32" and f.bias.dtype == "float32"
    np.testing.assert_allclose(f.weight.numpy(), w - 0.5 * (x.T @ g), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(f.bias.numpy(), b - 0.5 * g.sum(axis=0, keepdims=True), rtol=1e-5, atol=1e-5)


def test_tensor_tuple_split_stack(device):
    # hw4: split returns a TensorTuple; stack takes a list of Tensors
    np.random.seed(15)
    _A = np.random.randn(3, 4, 2)
    A = ndl.Tensor(_A, device=device)
    parts = ndl.split(A, axis=1)
    assert isinstance(parts, ndl.TensorTuple) and len(parts) == 4
    for i, part in enumerate(parts.tuple()):
        np.testing.assert_allclose(part.numpy(), _A[:, i, :], rtol=1e-6)
    np.testing.assert_allclose(parts[-1].numpy(), _A[:, 3, :], rtol=1e-6)
    restacked = ndl.stack([parts[i] for i in range(len(parts))], axis=1)
    np.testing.assert_allclose(restacked.numpy(), _A, rtol=1e-6)
    weights = np.random.randn(3, 4, 2)
    (restacked * ndl.Tensor(weights, device=device)).sum().backward()
    np.testing.assert_allclose(A.grad.numpy(), weights, rtol=1e-5, atol=1e-6)
    doubled = parts + parts.detach()
    np.testing.assert_allclose(doubled[0].numpy(), 2 * _A[:, 0, :], rtol=1e-6)
    t = ndl.make_tuple(A, A)
    np.testing.assert_allclose(ndl.tuple_get_item(t, 1).numpy(), _A, rtol=1e-6)


# -- hw4: conv and sequence models ---------------------------------------------------------
def _conv_nchw_ref(x, w, b, stride):
    k = w.shape[0]
    pad = k // 2
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (xp.shape[2] - k) // stride + 1, (xp.shape[3] - k) // stride + 1
    out = np.zeros((x.shape[0], w.shape[3], ho, wo))
    for i in range(k):
        for j in range(k):
            window = xp[:, :, i : i + stride * ho : stride, j : j + stride * wo : stride]
            out += np.einsum("nchw,co->nohw", window, w[i, j])
    return out + b.reshape(1, -1, 1, 1)


@pytest.mark.parametrize("stride", [1, 2])
def test_nn_conv_forward(stride, device):
    np.random.seed(16)
    f = nn.Conv(3, 4, 3, stride=stride, device=device)
    x = ndl.init.rand(2, 3, 7, 7, device=device)
    w, b = f.weight.numpy(), f.bias.numpy()
    assert w.shape == (3, 3, 3, 4) and b.shape == (4,)
    np.testing.assert_allclose(f(x).numpy(), _conv_nchw_ref(x.numpy(), w, b, stride), rtol=1e-4, atol=1e-5)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_rnn_and_lstm_forward(device):
    np.random.seed(17)
    seq_len, bs, n_in, hidden, layers = 4, 2, 3, 5, 2
    x = np.random.randn(seq_len, bs, n_in)
    h0 = np.random.randn(layers, bs, hidden)
    c0 = np.random.randn(layers, bs, hidden)
    rnn = nn.RNN(n_in, hidden, layers, device=device)
    lstm = nn.LSTM(n_in, hidden, layers, device=device)
    out, h_n = rnn(ndl.Tensor(x, device=device), ndl.Tensor(h0, device=device))
    lout, (lh, lc) = lstm(ndl.Tensor(x, device=device), (ndl.Tensor(h0, device=device), ndl.Tensor(c0, device=device)))

    def affine(cell, inp, h):
        return inp @ cell.W_ih.numpy() + cell.bias_ih.numpy() + h @ cell.W_hh.numpy() + cell.bias_hh.numpy()

    inputs, l_inputs, hs, l_hs, l_cs = x, x, [], [], []
    for layer in range(layers):
        cell, l_cell = rnn.rnn_cells[layer], lstm.lstm_cells[layer]
        assert l_cell.W_ih.shape == ((n_in if layer == 0 else hidden), 4 * hidden)
        h, lh_, lc_ = h0[layer], h0[layer], c0[layer]
        outs, l_outs = [], []
        for t in range(seq_len):
            h = np.tanh(affine(cell, inputs[t], h))
            i, f, g, o = np.split(affine(l_cell, l_inputs[t], lh_), 4, axis=1)  # gate order i, f, g, o
            lc_ = _sigmoid(f) * lc_ + _sigmoid(i) * np.tanh(g)
            lh_ = _sigmoid(o) * np.tanh(lc_)
            outs.append(h)
            l_outs.append(lh_)
        inputs, l_inputs = np.stack(outs), np.stack(l_outs)
        hs.append(h)
        l_hs.append(lh_)
        l_cs.append(lc_)
    for got, want in ((out, inputs), (h_n, np.stack(hs)), (lout, l_inputs), (lh, np.stack(l_hs)), (lc, np.stack(l_cs))):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-5)


def test_batchify_and_get_batch(device):
    data = list(range(26))
    batches = ndl.data.batchify(data, batch_size=4, device=device, dtype="float32")
    expected = np.array(data[:24]).reshape(4, 6).T  # column j is the j-th contiguous slice
    np.testing.assert_array_equal(batches, expected)
    X, y = ndl.data.get_batch(batches, 1, 3, device=device, dtype="float32")
    assert X.shape == (3, 4) and y.shape == (12,) and X.device == device
    np.testing.assert_array_equal(X.numpy(), expected[1:4])
    np.testing.assert_array_equal(y.numpy(), expected[2:5].reshape(-1))
    X, y = ndl.data.get_batch(batches, 4, 3, device=device)  # the last chunk is shorter
    assert X.shape == (1, 4) and y.shape == (4,)


def test_dataloader_on_device(device):
    np.random.seed(9)
    X, y = np.random.randn(23, 3).astype(np.float32), np.arange(23)
    loader = ndl.data.DataLoader(ndl.data.NDArrayDataset(X, y), batch_size=5, shuffle=True, device=device)
    np.random.seed(10)
    order = np.random.permutation(23)
    np.random.seed(10)
    batches = list(loader)
    assert [b[0].shape[0] for b in batches] == [5, 5, 5, 5, 3]
    assert all(isinstance(t, ndl.Tensor) and t.device == device for b in batches for t in b)
    np.testing.assert_array_equal(np.concatenate([b[0].numpy() for b in batches]), X[order])
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in batches]), y[order])


def test_mlp_resnet_eval_forward_on_device(device):
    np.random.seed(4)
    dim, hidden, classes, eps = 12, 8, 3, 1e-5
    model = MLPResNet(dim, hidden, num_blocks=2, num_classes=classes, device=device)
    model.eval()
    x = np.random.randn(4, dim).astype(np.float32)
    out = model(ndl.Tensor(x, device=device))
    assert out.shape == (4, classes) and out.device == device

    def linear(layer, h):
        return h @ layer.weight.numpy() + layer.bias.numpy()

    def norm(layer, h):  # eval: running statistics (zeros/ones at init)
        rm, rv = layer.running_mean.numpy(), layer.running_var.numpy()
        return (h - rm) / np.sqrt(rv + eps) * layer.weight.numpy() + layer.bias.numpy()

    relu = lambda h: np.maximum(h, 0)  # noqa: E731
    h = relu(linear(model.modules[0], x))
    for block in model.modules[2:-1]:
        lin1, bn1, _, _, lin2, bn2 = block.modules[0].fn.modules
        h = relu(norm(bn2, linear(lin2, relu(norm(bn1, linear(lin1, h))))) + h)
    np.testing.assert_allclose(out.numpy(), linear(model.modules[-1], h), rtol=1e-4, atol=1e-5)


# -- hw1: simple_ml on the shipped MNIST ------------------------------------------------------
@pytest.fixture(scope="module")
def mnist():
    X, y = parse_mnist(*shipped_mnist_or_skip())
    return X, y


def test_softmax_loss_hw1(device):
    np.random.seed(0)
    n, k = 50, 10
    y = np.random.randint(0, k, size=(n,))
    y_one_hot = np.zeros((n, k))
    y_one_hot[np.arange(n), y] = 1
    Z = ndl.Tensor(np.zeros((n, k)).astype(np.float32), device=device)
    Y = ndl.Tensor(y_one_hot, device=device)
    np.testing.assert_allclose(softmax_loss(Z, Y).numpy(), np.log(k), rtol=1e-6)
    z = np.random.randn(n, k).astype(np.float32)
    expected = np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(n), y])
    np.testing.assert_allclose(softmax_loss(ndl.Tensor(z, device=device), Y).numpy(), expected, rtol=1e-5)
    tol, eps = _grad_tolerances(device)
    small = _grad_inputs(device, (5, 10))
    gradient_check(softmax_loss, small[0], ndl.Tensor(np.eye(10)[[1, 3, 5, 7, 9]], device=device),
                   tol=tol, eps=eps, backward=True)  # fmt: skip


def _nn_epoch_reference(X, y, W1, W2, lr, batch):
    """hw1's two-layer network, one SGD pass, with hand-derived gradients."""
    W1, W2 = W1.astype(np.float64), W2.astype(np.float64)
    for start in range(0, X.shape[0], batch):
        Xb, yb = X[start : start + batch].astype(np.float64), y[start : start + batch]
        Z1 = Xb @ W1
        A = np.maximum(Z1, 0)
        G2 = (_softmax(A @ W2) - np.eye(W2.shape[1])[yb]) / Xb.shape[0]
        G1 = (Z1 > 0) * (G2 @ W2.T)
        W1, W2 = W1 - lr * Xb.T @ G1, W2 - lr * A.T @ G2
    return W1, W2


def test_nn_epoch_and_loss_err_on_mnist_slice(mnist, device):
    X, y = mnist[0][:300], mnist[1][:300]
    np.random.seed(0)
    hidden = 20
    W1_0 = np.random.randn(X.shape[1], hidden).astype(np.float32) / np.sqrt(hidden)
    W2_0 = np.random.randn(hidden, 10).astype(np.float32) / np.sqrt(10)
    W1, W2 = ndl.Tensor(W1_0, device=device), ndl.Tensor(W2_0, device=device)
    W1, W2 = nn_epoch(X, y, W1, W2, lr=0.2, batch=100)
    ref_W1, ref_W2 = _nn_epoch_reference(X, y, W1_0, W2_0, 0.2, 100)
    assert isinstance(W1, ndl.Tensor) and W1.device == device
    np.testing.assert_allclose(W1.numpy(), ref_W1, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(W2.numpy(), ref_W2, rtol=1e-4, atol=1e-5)
    logits = ndl.relu(ndl.Tensor(X, device=device) @ W1) @ W2
    loss, err = loss_err(logits, y)
    z = np.maximum(X @ ref_W1, 0) @ ref_W2
    expected_loss = np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y])
    np.testing.assert_allclose(float(loss), expected_loss, rtol=1e-4)
    np.testing.assert_allclose(err, np.mean(z.argmax(axis=1) != y))


