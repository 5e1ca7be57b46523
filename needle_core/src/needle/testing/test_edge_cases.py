"""Edge cases every backend settles the same way (docs/backends.md §7), and bad
input that must fail at the call that caused it, with a message naming the values."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from needle_core.autograd import Tensor
from needle_core.init import one_hot
from needle_core.kernels import ELEMENTWISE

from needle_core import backend_ndarray as nd

from ._reference import alloc, read, to_device


def _arange(device, shape):
    host = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    return host, nd.array(host, device=device)


# -- autograd -------------------------------------------------------------------------------------
def test_backward_rejects_an_out_grad_of_another_shape(needle_device):
    w = Tensor(np.ones((2, 3), np.float32), device=needle_device)
    with pytest.raises(ValueError, match=r"\(3, 3\).*\(2, 3\)"):
        (w * 2.0).backward(Tensor(np.ones((3, 3), np.float32), device=needle_device))
    assert w.grad is None
    (w * 2.0).backward(np.ones((2, 3), np.float32))  # the right shape, as an array-like
    np.testing.assert_array_equal(w.grad.numpy(), np.full((2, 3), 2.0))


# -- optimizers: step() gives p.data a new value, with or without a fused kernel ------------------
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "fallback"])
@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_step_leaves_earlier_detached_tensors_alone(needle_device, monkeypatch, name, fused):
    optim = pytest.importorskip("needle_nn.optim")
    kernel = "sgd_update" if name == "SGD" else "adam_update"
    if fused and getattr(needle_device, kernel) is None:
        pytest.skip(f"{needle_device!r} has no {kernel} kernel")
    if not fused:
        monkeypatch.setattr(needle_device, kernel, None)
    start = np.arange(6, dtype=np.float32).reshape(2, 3)
    p = Tensor(start, device=needle_device)
    opt = getattr(optim, name)([p], lr=0.5, **({"momentum": 0.9} if name == "SGD" else {}))
    for _ in range(2):  # the second step has optimizer state, as in training
        before = p.numpy()
        detached, data, row = p.detach(), p.data, p.realize_cached_data()[0:1, :]
        (p * p).sum().backward()
        opt.step()
        np.testing.assert_array_equal(detached.numpy(), before)
        np.testing.assert_array_equal(data.numpy(), before)
        np.testing.assert_array_equal(row.numpy(), before[0:1])
        assert not np.array_equal(p.numpy(), before)
        del detached, data, row


# -- writes ---------------------------------------------------------------------------------------
def test_writes_through_a_broadcast_view_raise(needle_device):
    host, base = _arange(needle_device, (1, 3))
    view = base.broadcast_to((4, 3))
    with pytest.raises(ValueError, match=r"read-only.*\(2, 3\)|\(2, 3\).*read-only"):
        view[1:3, :] = 7.0
    with pytest.raises(ValueError, match="read-only"):
        view[1:3, :] = nd.full((2, 3), 7.0, device=needle_device)
    with pytest.raises(ValueError, match="read-only"):
        view.fill(7.0)
    np.testing.assert_array_equal(base.numpy(), host)
    view[1:2, 0:2] = 5.0  # one row of the broadcast axis: no element repeats, so it may be written
    np.testing.assert_array_equal(base.numpy(), [[5.0, 5.0, 2.0]])


@pytest.mark.parametrize(
    "value",
    [np.ones((1, 1)), np.ones(1), np.float32(1.0), [[1.0]], nd.array([[1.0]])],
    ids=["numpy (1, 1)", "numpy (1,)", "numpy scalar", "list", "NDArray (1, 1)"],
)
def test_setitem_accepts_size_one_array_likes(needle_device, value):
    if isinstance(value, nd.NDArray):
        value = value.to(needle_device)
    for idx, expected_rows in (((slice(0, 1), slice(0, 1)), 1), ((slice(0, 2), slice(0, 2)), 2)):
        a = nd.full((4, 3), 0.0, device=needle_device)
        a[idx] = value  # one value into a one-element view, and into every element of a bigger one
        expected = np.zeros((4, 3), np.float32)
        expected[idx] = 1.0
        np.testing.assert_array_equal(a.numpy(), expected, err_msg=f"{expected_rows} rows")
    a = nd.full((4, 3), 0.0, device=needle_device)
    a[0:2, 0:2] = np.arange(4.0).reshape(2, 2)
    a[2:3, :] = [7.0, 8.0, 9.0]
    np.testing.assert_array_equal(a.numpy()[:3], [[0, 1, 0], [2, 3, 0], [7, 8, 9]])


def test_setitem_errors_name_the_view_shape(needle_device):
    a = nd.full((4, 3), 0.0, device=needle_device)
    with pytest.raises(TypeError, match=r"\(1, 2\)"):
        a[0:1, 0:2] = "x"
    with pytest.raises(ValueError, match=r"\(3,\).*\(1, 2\)"):
        a[0:1, 0:2] = np.ones(3)


# -- nn labels ------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [-1, 3])
def test_one_hot_rejects_labels_outside_the_classes(needle_device, bad):
    with pytest.raises(ValueError, match=rf"label {bad} .*\[0, 3\)"):
        one_hot(3, Tensor(np.array([0.0, bad, 1.0]), device=needle_device), device=needle_device)
    np.testing.assert_array_equal(one_hot(3, [2, 0], device=needle_device).numpy(), [[0, 0, 1], [1, 0, 0]])


# -- edge cases decided once (docs/backends.md §7) -------------------------------------------------
def test_max_over_an_empty_axis_raises_even_when_the_result_is_empty(needle_device):
    for shape, axis in (((0, 0), 1), ((3, 0), 1), ((0, 4), 0), ((0,), None)):
        a = nd.full(shape, 0.0, device=needle_device)
        with pytest.raises(ValueError, match="empty axis"):
            a.max(axis=axis)
    np.testing.assert_array_equal(nd.full((0, 0), 0.0, device=needle_device).sum(axis=1).numpy(), np.zeros(0))
    assert nd.full((3, 0), 0.0, device=needle_device).max(axis=0).shape == (0,)  # reduces a non-empty axis


def test_conv_with_an_empty_kernel_raises(needle_device):
    x = nd.full((1, 3, 3, 2), 1.0, device=needle_device)
    with pytest.raises(ValueError, match=r"kernel.*\(0, 0, 2, 1\)"):
        nd.conv2d_nhwc(x, nd.full((0, 0, 2, 1), 1.0, device=needle_device))


def test_pow_of_negative_zero_and_infinity_is_ieee_pow(needle_device):
    """C's pow (as NumPy's np.power with an exponent array): (-inf)**0.5 = inf and
    (-0)**0.5 = +0, not sqrt's nan and -0 (NumPy's shortcut for a scalar 0.5)."""
    base = np.array([-np.inf, -0.0, 4.0, np.inf, -1.0], np.float32)
    with np.errstate(invalid="ignore"):
        expected = np.power(base, np.full(base.shape, 0.5, np.float32))
        reference = next(r for r in ELEMENTWISE if r.name == "scalar_power").numpy(base, 0.5)
    assert np.isnan(expected[-1]) and expected[0] == np.inf and not np.signbit(expected[1])
    a = nd.array(base, device=needle_device)
    half = nd.full((1,), 0.5, device=needle_device).broadcast_to((5,))
    got = {
        "scalar_power": (a**0.5).numpy(),
        "ewise_power": (a ** nd.full(base.shape, 0.5, device=needle_device)).numpy(),
        "ewise_power on a broadcast exponent": (a**half).numpy(),
        "Tensor ** 0.5": (Tensor(base, device=needle_device) ** 0.5).numpy(),
    }
    for what, value in got.items():
        np.testing.assert_array_equal(value, expected, err_msg=what)
        zeros = expected == 0  # (a NaN's sign bit is not specified)
        np.testing.assert_array_equal(np.signbit(value[zeros]), np.signbit(expected[zeros]), err_msg=f"{what}: -0")
    np.testing.assert_array_equal(reference, expected, err_msg="the table's reference")


@pytest.mark.parametrize("step", [4, 2**31, 2**63, 2**64, 10**30])
def test_a_slice_step_beyond_the_axis_selects_its_start(needle_device, step):
    host, a = _arange(needle_device, (4, 6))
    view = a[1::step, 2::step]
    np.testing.assert_array_equal(view.numpy(), host[1::step, 2::step])
    np.testing.assert_array_equal(view.sum().numpy(), host[1::step, 2::step].sum())
    np.testing.assert_array_equal((view + 1.0).numpy(), host[1::step, 2::step] + 1.0)
    a[1::step, 2::step] = -1.0
    assert a.numpy()[1, 2] == -1.0 and (a.numpy() == -1.0).sum() == 1


@pytest.mark.parametrize("offset", [0, 3, 4, 100])
def test_a_zero_size_view_at_any_offset_reduces_to_the_identity(needle_device, offset):
    base = nd.full((4,), 1.0, device=needle_device)
    for shape, strides in (((0,), (1,)), ((2, 0), (1, 1)), ((0, 3), (3, 1))):
        view = nd.NDArray.make(shape, strides=strides, device=needle_device, handle=base._handle, offset=offset)
        np.testing.assert_array_equal(view.sum().numpy(), np.float32(0.0))
        np.testing.assert_array_equal(view.sum(axis=0).numpy(), np.zeros(shape[1:], np.float32))
        assert view.numpy().shape == shape and view.compact().shape == shape
        assert (view * 2.0).shape == shape and (view + view).shape == shape


# -- clear messages -------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [1.5, (0, 1.5), "1"])
def test_a_non_integer_axis_is_named(needle_device, axis):
    _, a = _arange(needle_device, (2, 3))
    for reduce in (a.sum, a.max, Tensor(a).sum):
        with pytest.raises(TypeError, match="axis|axes") as info:
            reduce(axis)
        assert repr(axis if not isinstance(axis, tuple) else 1.5) in str(info.value)


@pytest.mark.parametrize("name", ["sum", "max"])
def test_reductions_of_huge_broadcast_views_read_only_distinct_elements(needle_device, name):
    """10^10-element views: expanding them would need 40 GB, so every backend must
    reduce a broadcast (stride-0) axis without materialising it."""
    host = np.array([[-1.5], [2.0]], np.float32)
    src = nd.array(host, device=needle_device)
    big = src.broadcast_to((2, 5 * 10**9))
    expected = host[:, 0] * 5e9 if name == "sum" else host[:, 0]
    np.testing.assert_allclose(getattr(big, name)(axis=1).numpy(), expected, rtol=1e-6)
    total = getattr(big, name)().numpy()
    np.testing.assert_allclose(total, expected.sum() if name == "sum" else expected.max(), rtol=1e-6)
    square = nd.full((1, 1), 0.5, device=needle_device).broadcast_to((10**5, 10**5))
    got = getattr(square, name)(axis=0).numpy()
    assert got.shape == (10**5,)
    np.testing.assert_allclose(got, 0.5 * 10**5 if name == "sum" else 0.5, rtol=1e-6)


_RSS_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import needle as ndl
    from needle_core import backend_ndarray as nd

    dev = ndl.device(sys.argv[1])

    def reduce_all(view):
        for name in ("sum", "max"):
            for axis in (0, 1, None):
                getattr(view, name)(axis=axis).numpy()

    one = nd.full((1, 1), 1.0, device=dev)
    reduce_all(one.broadcast_to((64, 64)))  # warm up: kernels built, memory pools filled
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    reduce_all(one.broadcast_to((10_000, 10_000)))  # expanded, this view would take 400 MB
    print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
    """
)


def test_reducing_a_broadcast_view_does_not_expand_it(needle_device):
    """Peak RSS of a fresh process (host memory: GPU backends are bounded elsewhere)."""
    done = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, str(needle_device.canonical)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    grown_mb = float(done.stdout.split()[-1])
    assert grown_mb < 100, f"peak RSS grew by {grown_mb:.0f} MB reducing a broadcast view (expanded: 400 MB)"


@pytest.mark.parametrize("fallback", [False, True], ids=["kernel", "fallback"])
def test_logsumexp_of_a_block_holding_inf_is_inf(needle_device, fallback):
    """+inf in a block gives +inf (not inf - inf = NaN), an all -inf block -inf, NaN
    propagates: through the device's logsumexp kernel and through core's fallback."""
    from needle_core.ops import logsumexp

    x = np.array([[1.0, np.inf, 2.0], [-np.inf, -np.inf, -np.inf], [0.0, np.nan, 1.0], [0.5, 1.0, 2.0]], np.float32)
    with np.errstate(all="ignore"):
        expected = np.log(np.exp(x.astype(np.float64)).sum(axis=1))
    expected[1] = -np.inf
    if fallback:
        with nd.optional_kernels_disabled(needle_device):
            got = logsumexp(Tensor(x, device=needle_device), axes=(1,)).numpy()
    else:
        got = logsumexp(Tensor(x, device=needle_device), axes=(1,)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, equal_nan=True)


def test_sin_special_values_and_gradient(needle_device):
    """ewise_sin (an optional row whose fallback runs on the host): kernel and fallback
    agree with np.sin, sin(inf) = NaN, sin(-0) = -0; the gradient is cos."""
    from needle_core.ops import sin

    x = np.array([0.0, -0.0, 1.0, -2.5, 30.0, np.inf], np.float32)
    with np.errstate(invalid="ignore"):
        expected = np.sin(x)
    for disabled in (False, True):
        if disabled:
            with nd.optional_kernels_disabled(needle_device):
                got = sin(Tensor(x, device=needle_device)).numpy()
        else:
            got = sin(Tensor(x, device=needle_device)).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, equal_nan=True)
        assert np.signbit(got[1]), f"sin(-0.0) = {got[1]} (fallback: {disabled})"
    t = Tensor(x[:5], device=needle_device, requires_grad=True)
    sin(t).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), np.cos(x[:5]), rtol=1e-4, atol=1e-5)


# -- kernels: operands must have exactly the sizes the call names (docs/backends.md §1) -----------
@pytest.mark.parametrize("row", ELEMENTWISE, ids=lambda r: r.name)
def test_elementwise_kernels_reject_operands_larger_than_out(needle_device, row):
    kernel = getattr(needle_device, row.name, None)
    if kernel is None:
        pytest.skip(f"{needle_device!r} has no optional kernel {row.name}")
    big, out = to_device(needle_device, np.ones(6, np.float32)), alloc(needle_device, 4)
    with pytest.raises(ValueError):
        if row.arity == 1:
            kernel(big, out)
        elif row.is_scalar:
            kernel(big, 2.0, out)
        else:
            kernel(big, to_device(needle_device, np.ones(6, np.float32)), out)
    if row.arity == 2 and not row.is_scalar:
        with pytest.raises(ValueError):
            kernel(to_device(needle_device, np.ones(4, np.float32)), big, out)


def test_reduction_kernels_reject_operands_larger_than_out(needle_device):
    big, out = to_device(needle_device, np.ones(12, np.float32)), alloc(needle_device, 2)
    for name in ("reduce_sum", "reduce_max"):
        with pytest.raises(ValueError):
            getattr(needle_device, name)(big, out, 5)  # 12 elements for 2 rows of 5


@pytest.mark.parametrize("name", ["sgd_update", "adam_update"])
def test_optimizer_kernels_reject_buffers_of_another_size(needle_device, name):
    kernel = getattr(needle_device, name)
    if kernel is None:
        pytest.skip(f"{needle_device!r} has no optional kernel {name}")
    n = 3 if name == "sgd_update" else 4
    for big in range(n):  # each buffer in turn holds 6 elements where `size` says 4
        bufs = [to_device(needle_device, np.full(6 if i == big else 4, 0.5, np.float32)) for i in range(n)]
        with pytest.raises(ValueError):
            if name == "sgd_update":
                kernel(*bufs, 4, 0.1, 0.9, 0.0)
            else:
                kernel(*bufs, 4, 0.1, 0.9, 0.999, 1e-8, 0.0, 1)
        np.testing.assert_array_equal(read(needle_device, bufs[0], (bufs[0].size,)), 0.5)  # nothing written
    bufs = [to_device(needle_device, np.full(6, 0.5, np.float32)) for _ in range(n)]  # all larger than `size`
    with pytest.raises(ValueError):
        if name == "sgd_update":
            kernel(*bufs, 4, 0.1, 0.9, 0.0)
        else:
            kernel(*bufs, 4, 0.1, 0.9, 0.999, 1e-8, 0.0, 1)


# -- kernels: a view outside its buffer is a ValueError on every backend (docs/backends.md §1) ------
@pytest.mark.parametrize("kernel", ["compact", "ewise_setitem", "scalar_setitem", "to_numpy"])
def test_views_reaching_outside_the_buffer_raise_value_error(needle_device, kernel):
    buf = to_device(needle_device, np.zeros(10, np.float32))
    shape, strides, offset = (2, 2), (9, 1), 0  # its last element is 10, one past the end
    with pytest.raises(ValueError):
        if kernel == "compact":
            needle_device.compact(buf, alloc(needle_device, 4), shape, strides, offset)
        elif kernel == "ewise_setitem":
            needle_device.ewise_setitem(to_device(needle_device, np.ones(4, np.float32)), buf, shape, strides, offset)
        elif kernel == "scalar_setitem":
            needle_device.scalar_setitem(4, 1.0, buf, shape, strides, offset)
        else:
            needle_device.to_numpy(buf, shape, strides, offset)
    np.testing.assert_array_equal(read(needle_device, buf, (10,)), 0.0)  # nothing written
