"""Autograd structure: topological order, operator desugaring, backward semantics,
second derivatives, detach/.data, TENSOR_COUNTER, dtype rules, devices."""

from __future__ import annotations

import gc

import numpy as np
import pytest

import needle as ndl
from needle import backend_ndarray as nd
from needle.testing.gradcheck import check_gradients, work_dtype

ops = ndl.ops


def _t(array, device, dtype="float32", requires_grad=True):
    return ndl.Tensor(np.asarray(array, dtype=np.float64), device=device, dtype=dtype, requires_grad=requires_grad)


def _rand(shape, device, seed=0, dtype="float32"):
    return _t(np.random.default_rng(seed).standard_normal(shape), device, dtype)


# -- graph structure ---------------------------------------------------------------------


def test_find_topo_sort_is_post_order_left_to_right(needle_device) -> None:
    a, b = _rand((2, 2), needle_device), _rand((2, 2), needle_device, 1)
    m = a * b
    n = -b
    s = m + n
    c = ndl.exp(s) @ a
    order = ndl.autograd.find_topo_sort([c])
    assert order == [a, b, m, n, s, c.inputs[0], c]
    assert ndl.autograd.find_topo_sort([n, s]) == [b, n, a, m, s]


def test_find_topo_sort_handles_deep_graphs(needle_device) -> None:
    x = _rand((1,), needle_device)
    y = x
    for _ in range(3000):  # deeper than the default recursion limit
        y = y * 1.0001
    assert len(ndl.autograd.find_topo_sort([y])) == 3001
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001**3000], rtol=1e-3)


@pytest.mark.parametrize(
    "build, op_types",
    [
        (lambda a, b: a + b, ["EWiseAdd"]),
        (lambda a, b: a + 2, ["AddScalar"]),
        (lambda a, b: 2 + a, ["AddScalar"]),
        (lambda a, b: a - b, ["EWiseAdd", "Negate"]),
        (lambda a, b: a - 2, ["AddScalar"]),
        (lambda a, b: a * b, ["EWiseMul"]),
        (lambda a, b: a * 2, ["MulScalar"]),
        (lambda a, b: 2 * a, ["MulScalar"]),
        (lambda a, b: a / b, ["EWiseDiv"]),
        (lambda a, b: a / 2, ["DivScalar"]),
        (lambda a, b: a**2, ["PowerScalar"]),
        (lambda a, b: a**b, ["EWisePow"]),
        (lambda a, b: -a, ["Negate"]),
        (lambda a, b: a @ b, ["MatMul"]),
        (lambda a, b: a.sum(), ["Summation"]),
        (lambda a, b: a.reshape((4,)), ["Reshape"]),
        (lambda a, b: a.transpose(), ["Transpose"]),
        (lambda a, b: a.broadcast_to((3, 2, 2)), ["BroadcastTo"]),
    ],
)
def test_operator_desugaring(needle_device, build, op_types) -> None:
    a, b = _rand((2, 2), needle_device), _rand((2, 2), needle_device, 1)
    out = build(a, b)
    ops_in_graph = [type(n.op).__name__ for n in ndl.autograd.find_topo_sort([out]) if n.op is not None]
    assert sorted(ops_in_graph) == sorted(op_types)


def test_desugared_scalars(needle_device) -> None:
    a = _rand((2, 2), needle_device)
    assert (a - 3).op.scalar == -3.0
    assert (a + 3).op.scalar == 3.0
    assert isinstance((a - _rand((2, 2), needle_device)).inputs[1].op, ops.Negate)
    rsub = 3 - a
    assert isinstance(rsub.op, ops.AddScalar) and isinstance(rsub.inputs[0].op, ops.Negate)
    np.testing.assert_allclose(rsub.numpy(), 3 - a.numpy(), rtol=1e-6)
    np.testing.assert_allclose((2 / a).numpy(), 2 / a.numpy(), rtol=1e-5)


def test_tensors_compare_and_hash_by_identity(needle_device) -> None:
    a = _t([1.0, 2.0], needle_device)
    b = _t([1.0, 2.0], needle_device)
    assert (a == a) is True and (a == b) is False and a != b
    assert len({a, b, a}) == 2
    assert {a: 1}[a] == 1


# -- backward ------------------------------------------------------------------------------


def test_backward_sets_grad_on_every_reached_node(needle_device) -> None:
    x = _rand((3,), needle_device)
    y = x * 2.0
    z = (y * y).sum()
    z.backward()
    np.testing.assert_allclose(z.grad.numpy(), 1.0)
    np.testing.assert_allclose(y.grad.numpy(), 2 * y.numpy(), rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), 8 * x.numpy(), rtol=1e-6)
    z2 = (x * 3.0).sum()
    z2.backward()  # overwrites, as the course does
    np.testing.assert_allclose(x.grad.numpy(), np.full(3, 3.0))


def test_backward_default_is_ones_and_explicit_out_grad(needle_device) -> None:
    x = _rand((2, 3), needle_device)
    (x * 1.0).backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((2, 3)))
    g = np.arange(6.0).reshape(2, 3)
    (x * 2.0).backward(_t(g, needle_device))
    np.testing.assert_allclose(x.grad.numpy(), 2 * g)


def test_multiple_paths_accumulate(needle_device) -> None:
    x = _rand((2, 2), needle_device)
    y = x * x + x * 3.0 + ndl.exp(x)
    y.sum().backward()
    xn = x.numpy().astype(np.float64)
    np.testing.assert_allclose(x.grad.numpy(), 2 * xn + 3 + np.exp(xn), rtol=1e-5)


@pytest.mark.parametrize(
    "fn, d1, d2",
    [
        (lambda x: x**3, lambda x: 3 * x**2, lambda x: 6 * x),
        (lambda x: ndl.exp(x) * x, lambda x: np.exp(x) * (x + 1), lambda x: np.exp(x) * (x + 2)),
        (ndl.tanh, lambda x: 1 - np.tanh(x) ** 2, lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)),
        (
            ndl.sigmoid,
            lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s),
            lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s) * (1 - 2 * s),
        ),
        (lambda x: 1.0 / x, lambda x: -1 / x**2, lambda x: 2 / x**3),
        (lambda x: ndl.log(x * x), lambda x: 2 / x, lambda x: -2 / x**2),
    ],
)
def test_second_derivatives(needle_device, fn, d1, d2) -> None:
    xn = np.array([0.3, 0.7, 1.1, 1.9])
    x = _t(xn, needle_device, work_dtype(needle_device))
    fn(x).sum().backward()
    g = x.grad
    np.testing.assert_allclose(g.numpy(), d1(xn), rtol=1e-4)
    assert g.requires_grad and g.op is not None, ".grad must be a differentiable graph"
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), d2(xn), rtol=1e-4)


@pytest.mark.parametrize(
    "fn, shapes",
    [
        (lambda a, b: (a @ b).sum(), ((2, 3), (3, 2))),
        # matmul's adjoints (g b^T, a^T g) depend on both operands here: every transposed form is differentiated
        (lambda a, b: ((a @ b) ** 2).sum(), ((2, 3), (3, 4))),
        (lambda a: ndl.logsumexp(a, 1).sum(), ((2, 3),)),
        (lambda a: ndl.logsoftmax(a).sum(), ((2, 3),)),
        (lambda a, b: (a / b).sum(), ((2, 3), (2, 3))),
        # b's adjoint is summed over the broadcast axis (unbroadcast's SumTo node), and differentiated again
        (lambda a, b: ((a * b) ** 2).sum(), ((2, 3), (1, 3))),
        (lambda a, b: ((a + b) ** 3).sum(), ((2, 3), (3,))),
    ],
)
def test_gradient_of_gradient_matches_numerical(needle_device, fn, shapes) -> None:
    """d/dx sum(grad_f(x) * r) against central differences: .grad is differentiable."""
    rng = np.random.default_rng(3)
    arrays = [rng.uniform(0.5, 1.5, s) for s in shapes]
    weights = [rng.standard_normal(s) for s in shapes]

    def grad_dot(*xs):
        fn(*xs).backward()  # sets x.grad to a graph that depends on x
        total = None
        for x, w in zip(xs, weights, strict=False):
            term = (x.grad * ndl.Tensor(w, device=x.device, dtype=x.dtype)).sum()
            total = term if total is None else total + term
        return total

    check_gradients(
        grad_dot, *arrays, device=needle_device, rtol=1e-4 if work_dtype(needle_device) == "float64" else 5e-3
    )


# -- what backward writes, and what it skips (docs/api.md section 3 made precise) ----------------


def test_backward_skips_inputs_without_grad(needle_device, monkeypatch) -> None:
    rng = np.random.default_rng(0)
    xn, wn, bn = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal((2,))
    x = _t(xn, needle_device, requires_grad=False)  # the batch: nobody can use its adjoint
    w, b = _t(wn, needle_device), _t(bn, needle_device)
    out = (x @ w + b).sum()
    gemms = []  # every GEMM the ops make (MatMul's and its adjoints' nodes) goes through nd.matmul
    real = nd.matmul
    monkeypatch.setattr(nd, "matmul", lambda p, q: gemms.append(1) or real(p, q))
    out.backward()
    assert len(gemms) == 1, "backward computed the adjoint of an input that does not require grad"
    assert x.grad is None, "a node without requires_grad is not visited: its .grad is not written"
    np.testing.assert_allclose(w.grad.numpy(), xn.T @ np.ones((4, 2)), rtol=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), np.full(2, 4.0), rtol=1e-6)
    np.testing.assert_allclose(out.grad.numpy(), 1.0)  # the root always gets out_grad
    c = x.sum()  # a root without requires_grad still gets its out_grad
    c.backward()
    np.testing.assert_allclose(c.grad.numpy(), 1.0)
    assert x.grad is None


@pytest.mark.parametrize(
    "build, ref",
    [
        (lambda a, k: a * k, lambda an, kn: kn),
        (lambda a, k: k / a, lambda an, kn: -kn / an**2),
        (lambda a, k: a / k, lambda an, kn: 1 / kn),
        (lambda a, k: a**k, lambda an, kn: kn * an ** (kn - 1)),
        (lambda a, k: k**a, lambda an, kn: kn**an * np.log(kn)),
        (lambda a, k: k + a, lambda an, kn: np.ones_like(an)),
        (lambda a, k: ndl.stack([k, a], 0).sum(0), lambda an, kn: np.ones_like(an)),
    ],
)
def test_constant_operands_get_no_adjoint(needle_device, build, ref) -> None:
    rng = np.random.default_rng(1)
    an, kn = rng.uniform(0.5, 1.5, (2, 3)), rng.uniform(0.5, 1.5, (2, 3))
    a = _t(an, needle_device, work_dtype(needle_device))
    k = _t(kn, needle_device, a.dtype, requires_grad=False)
    build(a, k).sum().backward()
    assert k.grad is None
    np.testing.assert_allclose(a.grad.numpy(), ref(an, kn), rtol=1e-4)


def test_course_style_op_returning_every_adjoint_still_works(needle_device) -> None:
    class StudentMul(ndl.autograd.TensorOp):  # a course-style op: a full tuple, no None
        def compute(self, p, q):
            return p * q

        def gradient(self, out_grad, node):
            p, q = node.inputs
            return out_grad * q, out_grad * p

    an, kn = np.array([1.0, 2.0]), np.array([3.0, 5.0])
    a, k = _t(an, needle_device), _t(kn, needle_device, requires_grad=False)
    StudentMul()(a, k).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), kn)
    assert k.grad is None


def test_none_adjoint_for_an_input_that_requires_grad_is_zero(needle_device) -> None:
    class FirstOnly(ndl.autograd.TensorOp):  # d/dq declared None: a zero adjoint
        def compute(self, p, q):
            return p + q

        def gradient(self, out_grad, node):
            return out_grad, None

    a, b = _t([1.0, 2.0], needle_device), _t([3.0, 4.0], needle_device)
    FirstOnly()(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 1.0])
    np.testing.assert_array_equal(b.grad.numpy(), [0.0, 0.0])


def test_non_leaf_grad_is_a_detached_copy(needle_device) -> None:
    x = _rand((3,), needle_device)
    y = ndl.exp(x)  # exp's adjoint uses y itself: a differentiable y.grad would reach y
    z = (y * y).sum()
    z.backward()
    assert y.grad.op is None and not y.grad.requires_grad and y.grad.inputs == []
    np.testing.assert_allclose(y.grad.numpy(), 2 * y.numpy(), rtol=1e-6)
    assert x.grad.requires_grad and x.grad.op is not None  # a leaf's stays differentiable
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp(2 * x.numpy().astype(np.float64)), rtol=1e-5)


def test_training_steps_leave_no_reference_cycles(needle_device) -> None:
    """Without the cycle collector, every step's graph is freed by reference counting."""
    rng = np.random.default_rng(0)
    n, d, h, k = 8, 5, 6, 3
    params = [_t(rng.standard_normal(s) * 0.3, needle_device) for s in ((d, h), (h,), (h, k), (k,))]
    labels = rng.integers(0, k, n)

    def step() -> None:
        X = _t(rng.standard_normal((n, d)), needle_device, requires_grad=False)
        y = _t(np.eye(k)[labels], needle_device, requires_grad=False)
        w1, b1, w2, b2 = params
        hidden = ndl.relu(X @ w1 + b1.reshape((1, h)).broadcast_to((n, h)))
        logits = ndl.tanh(hidden) @ w2 + b2
        loss = (ndl.logsumexp(logits, (1,)) - (logits * y).sum((1,))).sum() / n
        loss.backward()
        for p in params:
            p.data = p.data - 0.1 * p.grad.data

    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        baseline = ndl.autograd.TENSOR_COUNTER
        counts = []
        for _ in range(5):
            step()
            counts.append(ndl.autograd.TENSOR_COUNTER)
        # each leaf's .grad (a differentiable graph) keeps the last step's graph alive;
        # the next backward overwrites it and reference counting frees the old one
        assert counts == [counts[0]] * 5, f"live Values grow across steps without gc: {counts}"
        for p in params:
            p.grad = None
        assert ndl.autograd.TENSOR_COUNTER == baseline, "a step's graph outlived it without gc.collect()"
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        cyclic = [o for o in gc.garbage if isinstance(o, ndl.autograd.Value)]
        assert not cyclic, f"{len(cyclic)} Values were only reachable through reference cycles"
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was_enabled:
            gc.enable()


# -- no-grad semantics, detach, .data --------------------------------------------------------


def test_nodes_without_grad_inputs_are_detached(needle_device) -> None:
    a = _t([1.0, 2.0], needle_device, requires_grad=False)
    b = (a * 2.0 + a).sum()
    assert b.requires_grad is False and b.op is None and b.inputs == [] and b.is_leaf()
    w = _t([1.0, 2.0], needle_device)
    c = w.data * 3.0
    assert c.op is None and c.inputs == [] and not c.requires_grad
    d = w * 3.0
    assert d.op is not None and d.inputs == [w] and d.requires_grad


def test_detach_and_data(needle_device) -> None:
    w = _t([[1.0, 2.0]], needle_device)
    y = w * 2.0
    det = y.detach()
    assert det.op is None and det.inputs == [] and not det.requires_grad
    np.testing.assert_array_equal(det.numpy(), y.numpy())
    data = w.data
    assert data is not w and not data.requires_grad and data.is_leaf()
    w.data = _t([3.0, 4.0], needle_device)  # shape may change: (2,) into (1, 2), as course biases do
    np.testing.assert_array_equal(w.numpy(), [3.0, 4.0])
    assert w.requires_grad


def test_data_setter_rejects_other_dtype(needle_device) -> None:
    if "float64" not in needle_device.dtypes:
        pytest.skip(f"{str(needle_device)!r} holds float32 only")
    w = _t([1.0, 2.0], needle_device)
    with pytest.raises(TypeError, match="float32.*float64"):
        w.data = _t([1.0, 2.0], needle_device, dtype="float64")
    with pytest.raises(TypeError, match="Tensor or NDArray"):
        w.data = [1.0, 2.0]


def test_tensor_counter_flat_over_data_updates(needle_device) -> None:
    w = _rand((5, 4), needle_device)
    x = _rand((3, 5), needle_device, 1)
    (x @ w).sum().backward()
    gc.collect()
    before = ndl.autograd.TENSOR_COUNTER
    for _ in range(1000):
        w.data = w.data - 0.1 * w.grad.data
    gc.collect()
    assert ndl.autograd.TENSOR_COUNTER == before
    assert w.dtype == "float32"


def test_tensor_counter_counts_live_values(needle_device) -> None:
    gc.collect()
    before = ndl.autograd.TENSOR_COUNTER
    a = _rand((2,), needle_device)
    b = a * 2.0
    assert ndl.autograd.TENSOR_COUNTER == before + 2
    del a, b
    gc.collect()
    assert ndl.autograd.TENSOR_COUNTER == before


def test_lazy_mode_defers_compute(needle_device, monkeypatch) -> None:
    monkeypatch.setattr(ndl.autograd, "LAZY_MODE", True)
    a = _t([1.0, 2.0], needle_device)
    b = a * 3.0 + 1.0
    assert b.cached_data is None
    np.testing.assert_array_equal(b.numpy(), [4.0, 7.0])


# -- dtypes ----------------------------------------------------------------------------------


def test_tensor_dtype_conversion_rules(needle_device) -> None:
    wide = work_dtype(needle_device)
    assert ndl.Tensor([1.5, 2.0], device=needle_device).dtype == wide  # like np.asarray: float64
    assert ndl.Tensor(np.ones(2, np.float64), device=needle_device).dtype == wide
    assert ndl.Tensor(np.ones(2, np.float32), device=needle_device).dtype == "float32"
    assert ndl.Tensor(np.arange(3), device=needle_device).dtype == "float32"
    assert ndl.Tensor(np.array([True, False]), device=needle_device).dtype == "float32"
    assert ndl.Tensor([1, 2], device=needle_device).dtype == "float32"
    for spelled in ("float32", np.float32, np.dtype("float32")):
        t = ndl.Tensor([1.0], device=needle_device, dtype=spelled)
        assert t.dtype == "float32"
    with pytest.raises(ValueError, match="float16"):
        ndl.Tensor([1.0], device=needle_device, dtype="float16")
    with pytest.raises(TypeError, match="dtype"):
        ndl.Tensor([1.0], device=needle_device, dtype="not-a-dtype")


def test_tensor_from_tensor_and_ndarray(needle_device) -> None:
    a = _t([[1.0, 2.0]], needle_device)
    b = ndl.Tensor(a)
    assert b.device == needle_device and b.dtype == "float32" and b.requires_grad
    np.testing.assert_array_equal(b.numpy(), a.numpy())
    arr = nd.array(np.array([1.0, 2.0]), device=needle_device)
    c = ndl.Tensor(arr, requires_grad=False)
    assert c.device == needle_device and not c.requires_grad
    arr[0:1] = 5.0  # the Tensor holds a copy
    assert c.numpy()[0] == 1.0


def test_mixed_precision_promotes(needle_device) -> None:
    if "float64" not in needle_device.dtypes:
        pytest.skip(f"{str(needle_device)!r} holds float32 only")
    a = _rand((2, 3), needle_device, 0, "float32")
    b = _rand((2, 3), needle_device, 1, "float64")
    for out in (a + b, b * a, a / b, a @ b.transpose(), ndl.stack([a, b], 0)):
        assert out.dtype == "float64"
    (a * b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), b.numpy(), rtol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), a.numpy(), rtol=1e-6)
    w = _rand((3, 2), needle_device, 2, "float32")  # float32 model, float64 out_grad
    out = a @ w
    out.backward(_t(np.ones((2, 2)), needle_device, dtype="float64"))
    np.testing.assert_allclose(w.grad.numpy(), a.numpy().T @ np.ones((2, 2)), rtol=1e-6)


# -- course-style code -----------------------------------------------------------------------


def test_course_style_usage(needle_device) -> None:
    # the course's idiom: an NDArray made on the default device, moved by Tensor(device=)
    x = ndl.Tensor(nd.array(np.random.randn(3, 4)), device=needle_device)
    y = ndl.Tensor(nd.array(np.random.randn(4, 2)), device=needle_device)
    assert x.device == needle_device and x.dtype == "float32"
    out = ndl.logsumexp(ndl.relu(x @ y) + ndl.tanh(x @ y), axes=(1,))
    loss = ndl.summation(out / 2.0 - ndl.log(ndl.exp(out)))
    loss.backward()
    assert x.grad.shape == (3, 4) and y.grad.shape == (4, 2)
    assert ndl.ops.summation is ndl.summation
    for name in (
        "add",
        "add_scalar",
        "multiply",
        "mul_scalar",
        "power",
        "power_scalar",
        "divide",
        "divide_scalar",
        "transpose",
        "reshape",
        "broadcast_to",
        "summation",
        "matmul",
        "negate",
        "log",
        "exp",
        "relu",
        "tanh",
        "sigmoid",
        "max",
        "stack",
        "split",
        "flip",
        "dilate",
        "undilate",
        "conv",
        "logsoftmax",
        "logsumexp",
        "make_tuple",
        "tuple_get_item",
        "fused_add_scalars",
    ):
        assert getattr(ndl, name) is getattr(ndl.ops, name), name
    assert ndl.autograd.Tensor is ndl.Tensor and ndl.autograd.TensorTuple is ndl.TensorTuple


def test_tensor_methods(needle_device) -> None:
    x = _rand((2, 3), needle_device)
    assert x.shape == (2, 3) and x.device == needle_device and x.is_leaf()
    assert x.realize_cached_data() is x.cached_data
    assert isinstance(x.realize_cached_data(), nd.NDArray)
    np.testing.assert_allclose(x.sum(1).numpy(), x.numpy().sum(1), rtol=1e-6)
    assert x.reshape((3, 2)).shape == (3, 2) and x.transpose().shape == (3, 2)
    assert x.broadcast_to((4, 2, 3)).shape == (4, 2, 3)
    assert x.matmul(x.transpose()).shape == (2, 2)
    assert "Tensor" in repr(x)


def test_tensor_counter_balanced_by_failures_and_copies(needle_device) -> None:
    import copy

    gc.collect()
    before = ndl.autograd.TENSOR_COUNTER
    for _ in range(3):
        with pytest.raises(ValueError):
            ndl.Tensor([1.0], device=needle_device, dtype="float16")
    y = _rand((2,), needle_device) * 2.0
    clone = copy.copy(y)  # rebuilt through __setstate__, sharing y's NDArray
    np.testing.assert_array_equal(clone.numpy(), y.numpy())
    del y, clone
    gc.collect()
    assert ndl.autograd.TENSOR_COUNTER == before


def test_array_operands_become_constants(needle_device) -> None:
    x = _rand((2, 3), needle_device)
    arr = np.arange(6.0).reshape(2, 3)
    for out, ref in (
        (x + arr, x.numpy() + arr),
        (x * arr, x.numpy() * arr),
        (arr - x, arr - x.numpy()),
        (x / (arr + 1), x.numpy() / (arr + 1)),
    ):
        assert out.dtype == "float32"
        np.testing.assert_allclose(out.numpy(), ref, rtol=1e-6)
    (x * arr).sum().backward(np.float32(1.0))
    np.testing.assert_allclose(x.grad.numpy(), arr)
