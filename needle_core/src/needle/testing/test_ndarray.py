"""Conformance of the NDArray layer on a device (docs/api.md §2): views share buffers,
course indexing, arithmetic and reductions against NumPy, dtype rules, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from needle_core.device import Device
from needle_core.kernels import ALL_KERNELS

from needle_core import backend_ndarray as nd

from ._reference import EWISE_TOL, SETTINGS, np_conv_nhwc, np_logsumexp, reduction_tol, seeds, shapes


def _arr(device, shape, seed=0, dtype="float32"):
    host = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return host, nd.array(host, dtype=dtype, device=device)


def _same_buffer(a: nd.NDArray, b: nd.NDArray) -> bool:
    return a._handle.ptr() == b._handle.ptr()


def _np_strides(x: np.ndarray) -> tuple[int, ...]:
    return tuple(s // x.itemsize for s in x.strides)


def _twin(device) -> Device:
    """Another device with the same kernels (for device-mismatch errors)."""
    return Device("twin", 7, {name: getattr(device, name, None) for name in ALL_KERNELS}, dtypes=device.dtypes)


# -- construction and attributes -----------------------------------------------------------------
def test_construct_from_numpy_list_and_ndarray(needle_device):
    host, a = _arr(needle_device, (3, 4))
    assert a.shape == (3, 4) and a.strides == (4, 1) and a.ndim == 2 and a.size == 12
    assert a.device == needle_device and a.dtype == "float32" and a._offset == 0 and a.is_compact()
    np.testing.assert_array_equal(a.numpy(), host)
    b = nd.NDArray(a)  # a copy
    assert not _same_buffer(a, b)
    np.testing.assert_array_equal(b.numpy(), host)
    c = nd.NDArray([[1.0, 2.0], [3.0, 4.0]], device=needle_device)
    np.testing.assert_array_equal(c.numpy(), [[1, 2], [3, 4]])


def test_make_empty_full(needle_device):
    a = nd.NDArray.make((2, 3), device=needle_device)
    assert a.shape == (2, 3) and a.strides == (3, 1) and a._handle.size == 6
    view = nd.NDArray.make((2,), strides=(2,), device=needle_device, handle=a._handle, offset=1)
    assert _same_buffer(a, view) and view._offset == 1 and not view.is_compact()
    assert nd.empty((4, 1), device=needle_device).shape == (4, 1)
    np.testing.assert_array_equal(nd.full((2, 2), 3.5, device=needle_device).numpy(), np.full((2, 2), 3.5))


def test_numpy_interop(needle_device):
    host, a = _arr(needle_device, (2, 5))
    np.testing.assert_array_equal(np.asarray(a), host)
    assert np.asarray(a, dtype=np.float64).dtype == np.float64
    assert isinstance(a.astype("float64"), np.ndarray) and a.astype("float64").dtype == np.float64
    copied = np.array(a, copy=True)
    copied += 1  # an explicit copy never writes back
    np.testing.assert_array_equal(a.numpy(), host)


def test_iteration_and_scalars(needle_device):
    host, a = _arr(needle_device, (3, 2))
    rows = list(a.permute((1, 0)))
    assert len(rows) == 2 and len(a) == 3
    for row, expected in zip(rows, host.T, strict=True):
        np.testing.assert_array_equal(row.numpy(), expected)
    assert float(a[1, 1]) == float(host[1, 1])
    with pytest.raises(ValueError, match=r"\(3, 2\)"):
        bool(a)


def test_zero_dim_and_empty_arrays(needle_device):
    s = nd.array(np.float32(2.5), device=needle_device)
    assert s.shape == () and s.size == 1
    np.testing.assert_array_equal((s * 2.0).numpy(), np.float32(5.0))
    host, a = _arr(needle_device, (2, 3))
    total = a.sum()
    assert total.shape == () and total.numpy().shape == ()
    np.testing.assert_allclose(total.numpy(), host.sum(), rtol=1e-5)
    empty = nd.array(np.zeros((0, 3)), device=needle_device)
    assert (empty + empty).shape == (0, 3) and empty.permute((1, 0)).compact().shape == (3, 0)
    np.testing.assert_array_equal(empty.sum(0).numpy(), np.zeros(3))
    assert a[2:, :].shape == (0, 3)
    a[2:, :] = 1.0  # an empty view: nothing to write
    np.testing.assert_array_equal(a.numpy(), host)


def test_subclass(needle_device):
    class Sub(nd.NDArray):
        pass

    host = np.arange(6, dtype=np.float32).reshape(2, 3)
    s = Sub(host, device=needle_device)
    assert isinstance(s, nd.NDArray) and s.shape == (2, 3)
    np.testing.assert_array_equal((s + 1).numpy(), host + 1)


def test_to_device_roundtrip(needle_device):
    host, a = _arr(needle_device, (3, 2))
    assert a.to(needle_device) is a
    ref = nd.cpu_numpy()
    there = a.to(ref)
    assert there.device == ref
    back = there.to(needle_device)
    assert back.device == needle_device
    np.testing.assert_array_equal(back.numpy(), host)


# -- views share the buffer ------------------------------------------------------------------------
def test_views_share_the_buffer(needle_device):
    host, a = _arr(needle_device, (4, 6))
    views = {
        "reshape": (a.reshape((6, 4)), host.reshape(6, 4)),
        "permute": (a.permute((1, 0)), host.transpose(1, 0)),
        "broadcast": (a.reshape((4, 1, 6)).broadcast_to((4, 3, 6)), np.broadcast_to(host.reshape(4, 1, 6), (4, 3, 6))),
        "slice": (a[1:4:2, 2:], host[1:4:2, 2:]),
        "as_strided": (a.as_strided((3, 2), (6, 1)), np.lib.stride_tricks.as_strided(host, (3, 2), (24, 4))),
    }
    for name, (view, expected) in views.items():
        assert _same_buffer(a, view), f"{name} copied the buffer"
        assert view.strides == _np_strides(expected), name
        np.testing.assert_array_equal(view.numpy(), expected, err_msg=name)


def test_compact_copies_only_when_needed(needle_device):
    _, a = _arr(needle_device, (3, 4))
    assert a.compact() is a
    t = a.permute((1, 0))
    assert not t.is_compact()
    c = t.compact()
    assert c.is_compact() and not _same_buffer(a, c)
    np.testing.assert_array_equal(c.numpy(), a.numpy().T)


def test_flat_writes_through(needle_device):
    host, a = _arr(needle_device, (3, 4))
    a.flat[5] += 0.25
    a.flat[-1] = 7.0
    host = host.copy()
    host.flat[5] += np.float32(0.25)
    host.flat[-1] = 7.0
    np.testing.assert_array_equal(a.numpy(), host)
    assert _same_buffer(a, a.flat)


def test_fill_on_a_view(needle_device):
    host, a = _arr(needle_device, (4, 4))
    a[1:3, ::2].fill(2.0)
    host[1:3, ::2] = 2.0
    np.testing.assert_array_equal(a.numpy(), host)


# -- course indexing ----------------------------------------------------------------------------------
_index = st.one_of(
    st.integers(-6, 5),
    st.builds(slice, st.one_of(st.none(), st.integers(-7, 7)), st.one_of(st.none(), st.integers(-7, 7)),
              st.one_of(st.none(), st.integers(1, 3))),
)  # fmt: skip


def _course_index(idx, n):
    """The course's rule as a NumPy index: an int keeps its axis."""
    if isinstance(idx, int):
        i = idx + n if idx < 0 else idx
        return slice(i, i + 1)
    return idx


@SETTINGS
@given(shape=shapes(1, 4, 1, 6), data=st.data())
def test_getitem_follows_course_rules(needle_device, shape, data):
    host = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    a = nd.array(host, device=needle_device)
    idxs = tuple(data.draw(_index.filter(lambda i, n=n: not isinstance(i, int) or -n <= i < n)) for n in shape)
    view = a[idxs]
    expected = host[tuple(_course_index(i, n) for i, n in zip(idxs, shape, strict=True))]
    assert view.shape == expected.shape and _same_buffer(a, view)
    np.testing.assert_array_equal(view.numpy(), expected)


def test_int_index_keeps_axis_and_process_slice(needle_device):
    _, a = _arr(needle_device, (3, 5))
    assert a[1, :].shape == (1, 5) and a[-1, 2].shape == (1, 1)
    assert a.process_slice(slice(None, -1, None), 1) == slice(0, 4, 1)
    assert a.process_slice(slice(-3, None, 2), 0) == slice(0, 3, 2)


def test_bad_indices(needle_device):
    _, a = _arr(needle_device, (3, 5))
    with pytest.raises(IndexError, match=r"\(3, 5\)"):
        a[1]
    with pytest.raises(IndexError, match="out of range"):
        a[3, 0]
    with pytest.raises(ValueError, match="positive"):
        a[::-1, :]


@SETTINGS
@given(shape=shapes(1, 3, 1, 6), data=st.data(), seed=seeds)
def test_setitem_into_views(needle_device, shape, data, seed):
    host, a = _arr(needle_device, shape, seed)
    host = host.copy()
    idxs = tuple(data.draw(_index.filter(lambda i, n=n: not isinstance(i, int) or -n <= i < n)) for n in shape)
    np_idx = tuple(_course_index(i, n) for i, n in zip(idxs, shape, strict=True))
    target = host[np_idx].shape
    if data.draw(st.booleans(), label="scalar"):
        a[idxs] = 1.5
        host[np_idx] = 1.5
    else:  # any NDArray with the same number of elements, here a non-compact one
        src = np.random.default_rng(seed + 1).standard_normal(target[::-1]).astype(np.float32)
        a[idxs] = nd.array(src, device=needle_device).permute(tuple(range(len(shape)))[::-1])
        host[np_idx] = src.transpose()
    np.testing.assert_array_equal(a.numpy(), host)


def test_setitem_size_mismatch_names_shapes(needle_device):
    _, a = _arr(needle_device, (4, 4))
    with pytest.raises(ValueError, match=r"\(3, 3\).*\(2, 4\)"):
        a[0:2, :] = nd.full((3, 3), 1.0, device=needle_device)


# -- layout operations ------------------------------------------------------------------------------
def test_reshape_rules(needle_device):
    host, a = _arr(needle_device, (2, 6))
    np.testing.assert_array_equal(a.reshape((3, -1)).numpy(), host.reshape(3, 4))
    with pytest.raises(ValueError, match=r"\(2, 6\).*\(5, 2\)"):
        a.reshape((5, 2))
    with pytest.raises(ValueError, match="compact"):
        a.permute((1, 0)).reshape((12,))


@SETTINGS
@given(shape=shapes(1, 4, 1, 5), data=st.data(), seed=seeds)
def test_permute_broadcast_flip_pad(needle_device, shape, data, seed):
    host, a = _arr(needle_device, shape, seed)
    order = tuple(data.draw(st.permutations(range(len(shape))), label="order"))
    np.testing.assert_array_equal(a.permute(order).numpy(), host.transpose(order))
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, len(shape) - 1)), label="flip axes")))
    flipped = a.permute(order).flip(axes)  # flip of a non-compact view
    assert flipped.is_compact()
    np.testing.assert_array_equal(flipped.numpy(), np.flip(host.transpose(order), axes))
    pads = tuple(data.draw(st.tuples(st.integers(0, 2), st.integers(0, 2))) for _ in shape)
    np.testing.assert_array_equal(a.pad(pads).numpy(), np.pad(host, pads))
    ones = tuple(1 if data.draw(st.booleans()) else n for n in shape)
    small = nd.array(host[tuple(slice(0, k) for k in ones)], device=needle_device)
    target = (2, *shape)
    np.testing.assert_array_equal(
        small.broadcast_to(target).numpy(), np.broadcast_to(host[tuple(slice(0, k) for k in ones)], target)
    )


def test_layout_errors_name_shapes(needle_device):
    _, a = _arr(needle_device, (2, 3))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 3\)"):
        a.broadcast_to((4, 3))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        a.permute((0, 0))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        a.pad(((1, 1),))
    with pytest.raises(ValueError, match="past"):
        a.as_strided((3, 3), (3, 1))


# -- arithmetic ----------------------------------------------------------------------------------------
_BINARY = {
    "add": (lambda x, y: x + y, np.add),
    "sub": (lambda x, y: x - y, np.subtract),
    "mul": (lambda x, y: x * y, np.multiply),
    "div": (lambda x, y: x / y, np.divide),
    "maximum": (lambda x, y: x.maximum(y), np.maximum),
    "pow": (lambda x, y: x**y, np.power),
}


@pytest.mark.parametrize("name", sorted(_BINARY))
@SETTINGS
@given(shape=shapes(1, 3, 1, 5), seed=seeds, scalar=st.floats(0.5, 3.0))
def test_binary_arithmetic(needle_device, name, shape, seed, scalar):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.5, 2.0, shape).astype(np.float32)
    y = rng.uniform(0.5, 2.0, shape).astype(np.float32)
    op, ref = _BINARY[name]
    a, b = nd.array(x, device=needle_device), nd.array(y, device=needle_device)
    np.testing.assert_allclose(op(a, b).numpy(), ref(x, y), **EWISE_TOL)
    np.testing.assert_allclose(op(a, scalar).numpy(), ref(x, np.float32(scalar)), **EWISE_TOL)
    # non-compact operands are compacted first
    reverse = tuple(range(len(shape)))[::-1]
    np.testing.assert_allclose(op(a.permute(reverse), b.permute(reverse)).numpy(), ref(x.T, y.T), **EWISE_TOL)


@pytest.mark.parametrize("strided", [True, False], ids=["ewise_strided", "without_ewise_strided"])
def test_elementwise_keeps_a_permuted_layout(needle_device, strided):
    """Views that are a whole buffer in another axis order (NCHW views of NHWC data)
    give results in that layout, with the values NumPy gives; other views row-major."""
    if not strided:  # the same kernels less ewise_strided: the views are compacted instead
        kernels = {name: getattr(needle_device, name, None) for name in ALL_KERNELS}
        needle_device = Device("plain", 7, {**kernels, "ewise_strided": None}, dtypes=needle_device.dtypes)
    x, a = _arr(needle_device, (2, 3, 4, 5), seed=1)
    y, b = _arr(needle_device, (2, 3, 4, 5), seed=2)
    nchw = (0, 3, 1, 2)
    va, vb, xa, yb = a.permute(nchw), b.permute(nchw), x.transpose(nchw), y.transpose(nchw)
    stats = nd.array(np.arange(5, dtype=np.float32).reshape(1, 5, 1, 1), device=needle_device)
    bcast = stats.broadcast_to(va.shape)
    other = nd.array(np.ascontiguousarray(yb.transpose(0, 1, 3, 2)), device=needle_device).permute((0, 1, 3, 2))
    for got, expected in [
        (va.exp(), np.exp(xa)), (va * 2.0, xa * 2), (nd.relu(va), np.maximum(xa, 0)), (va + vb, xa + yb),
        (va * bcast, xa * np.arange(5).reshape(1, 5, 1, 1)), (bcast - va, np.arange(5).reshape(1, 5, 1, 1) - xa),
        (va.maximum(other), np.maximum(xa, yb)),
    ]:  # fmt: skip
        assert got.strides == va.strides and not got.is_compact(), got.strides
        np.testing.assert_allclose(got.numpy(), expected, **EWISE_TOL)
        np.testing.assert_allclose(got.compact().numpy(), expected, **EWISE_TOL)
    part = a[:, :, :, 1:3].permute(nchw)  # not a whole buffer: row-major result
    xp = x[:, :, :, 1:3].transpose(nchw)
    for got, expected in [(part * 2.0, xp * 2), (part + part, 2 * xp)]:
        assert got.is_compact()
        np.testing.assert_allclose(got.numpy(), expected, **EWISE_TOL)
    mixed = va + nd.array(np.ascontiguousarray(yb), device=needle_device)  # a compact operand wins
    assert mixed.is_compact()
    np.testing.assert_allclose(mixed.numpy(), xa + yb, **EWISE_TOL)


def test_unary_and_reflected(needle_device):
    x = np.linspace(0.1, 3, 12, dtype=np.float32).reshape(3, 4)
    a = nd.array(x, device=needle_device)
    for got, expected in [
        (-a, -x), (a.log(), np.log(x)), (a.exp(), np.exp(x)), (a.tanh(), np.tanh(x)),
        (nd.log(a), np.log(x)), (nd.exp(a), np.exp(x)), (nd.tanh(a), np.tanh(x)),
        (2.0 - a, 2 - x), (2.0 + a, 2 + x), (2.0 * a, 2 * x), (1.0 / a, 1 / x),
        (nd.maximum(a, 1.0), np.maximum(x, 1)), (nd.sqrt(a), np.sqrt(x)), (nd.relu(a - 1.0), np.maximum(x - 1, 0)),
        (nd.sigmoid(a), 1 / (1 + np.exp(-x))), (a**2, x**2), (a**0.5, np.sqrt(x)),
    ]:  # fmt: skip
        np.testing.assert_allclose(got.numpy(), expected, **EWISE_TOL)


def test_comparisons(needle_device):
    x = np.array([[1, 2, 3, np.nan], [3, 2, 1, 0]], dtype=np.float32)
    y = np.array([[1, 3, 2, 1], [3, 2, np.nan, 0]], dtype=np.float32)
    a, b = nd.array(x, device=needle_device), nd.array(y, device=needle_device)
    with np.errstate(invalid="ignore"):
        for op in ("__eq__", "__ne__", "__ge__", "__gt__", "__lt__", "__le__"):
            np.testing.assert_array_equal(getattr(a, op)(b).numpy(), getattr(x, op)(y).astype(np.float32), err_msg=op)
            np.testing.assert_array_equal(
                getattr(a, op)(2.0).numpy(), getattr(x, op)(2.0).astype(np.float32), err_msg=op
            )


def test_scalars_never_promote(needle_device):
    _, a = _arr(needle_device, (2, 2))
    for result in (a * np.float64(0.1), a + np.float32(2), np.float64(2.0) * a, a ** np.float64(2)):
        assert isinstance(result, nd.NDArray) and result.dtype == "float32"


def test_ewise_errors_name_shapes_and_devices(needle_device):
    _, a = _arr(needle_device, (2, 3))
    _, b = _arr(needle_device, (3, 2))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        a + b
    other = nd.array(np.ones((2, 3)), device=_twin(needle_device))
    with pytest.raises(ValueError, match="twin"):
        a * other
    with pytest.raises(TypeError, match=r"\(2, 3\)"):
        a + "x"


# -- matmul ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sa,sb",
    [
        ((5, 3), (3, 4)),
        ((3, 2, 1), (3, 3, 1, 2)),
        ((6, 6, 5, 4), (4, 3)),
        ((2, 4), (2, 4, 4, 2)),
        ((2, 3, 4), (2, 4, 5)),
    ],
)
def test_matmul_broadcasts_batch_axes(needle_device, sa, sb):
    x, a = _arr(needle_device, sa, 1)
    y, b = _arr(needle_device, sb, 2)
    expected = x.astype(np.float64) @ y.astype(np.float64)
    np.testing.assert_allclose((a @ b).numpy(), expected, **reduction_tol(sa[-1], 4.0))
    with nd.optional_kernels_disabled(needle_device):
        np.testing.assert_allclose(nd.matmul(a, b).numpy(), expected, **reduction_tol(sa[-1], 4.0))


def test_matmul_errors_name_shapes(needle_device):
    _, a = _arr(needle_device, (2, 3))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 3\)"):
        a @ a
    _, c = _arr(needle_device, (2, 3, 4))
    _, d = _arr(needle_device, (3, 4, 5))
    with pytest.raises(ValueError, match=r"\(2, 3, 4\).*\(3, 4, 5\)"):
        c @ d


# -- reductions ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sum", "max"])
@SETTINGS
@given(shape=shapes(1, 4, 1, 6), data=st.data(), seed=seeds)
def test_reductions_over_any_axes(needle_device, name, shape, data, seed):
    host, a = _arr(needle_device, shape, seed)
    axes = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1),
                               st.sets(st.integers(0, len(shape) - 1)).map(tuple)), label="axes")  # fmt: skip
    keepdims = data.draw(st.booleans(), label="keepdims")
    view = data.draw(st.booleans(), label="on a permuted view")
    src, ref = (a.permute(tuple(range(len(shape)))[::-1]), host.T) if view else (a, host)
    got = getattr(src, name)(axes, keepdims=keepdims)
    expected = getattr(ref.astype(np.float64), name)(axis=axes, keepdims=keepdims)
    assert got.shape == expected.shape
    n = host.size // max(1, expected.size)
    np.testing.assert_allclose(got.numpy(), expected, **reduction_tol(n, 3.0))
    np.testing.assert_allclose(getattr(nd, name)(src, axes, keepdims).numpy(), expected, **reduction_tol(n, 3.0))


def test_reduction_axis_errors(needle_device):
    _, a = _arr(needle_device, (2, 3))
    with pytest.raises(ValueError, match=r"axis 2.*\(2, 3\)"):
        a.sum(2)
    with pytest.raises(ValueError, match="repeated"):
        a.max((1, 1))


@pytest.mark.parametrize("axes", [None, 0, (1,), (0, 2), (2, 1, 0)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp(needle_device, axes, keepdims):
    x = (np.random.default_rng(3).standard_normal((3, 4, 5)) * 20).astype(np.float32)
    x[1, :, :] = -np.inf  # whole slices of -inf give -inf (and no NaN)
    x[0, 2, 3] = -np.inf
    a = nd.array(x, device=needle_device)
    expected = np_logsumexp(x, axes, keepdims)
    for disabled in (False, True):
        if disabled:
            with nd.optional_kernels_disabled(needle_device), np.errstate(divide="ignore"):
                got = nd.logsumexp(a, axes, keepdims).numpy()
        else:
            got = nd.logsumexp(a, axes, keepdims).numpy()
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 1), (3, 2)])
def test_conv2d_nhwc(needle_device, stride, padding):
    x, a = _arr(needle_device, (2, 7, 8, 3), 4)
    w, k = _arr(needle_device, (3, 3, 3, 5), 5)
    expected = np_conv_nhwc(x, w, stride, padding)
    np.testing.assert_allclose(nd.conv2d_nhwc(a, k, stride, padding).numpy(), expected, **reduction_tol(27, 4.0))
    with pytest.raises(ValueError, match=r"\(2, 7, 8, 3\).*\(3, 3, 4, 5\)"):
        nd.conv2d_nhwc(a, nd.full((3, 3, 4, 5), 1.0, device=needle_device))


# (H, W), K, stride, padding: images small enough that some kernel taps only meet padding
# (they are dropped), including a tap that meets none, and rows no window reaches
@pytest.mark.parametrize(
    "size,k,stride,padding",
    [((1, 1), 3, 1, 1), ((2, 2), 3, 2, 1), ((1, 2), 5, 1, 2), ((3, 1), 4, 3, 3), ((1, 1), 1, 3, 1), ((5, 4), 3, 3, 2)],
)
def test_conv2d_nhwc_small_images(needle_device, size, k, stride, padding):
    x, a = _arr(needle_device, (2, *size, 3), 6)
    w, kern = _arr(needle_device, (k, k, 3, 4), 7)
    expected = np_conv_nhwc(x, w, stride, padding)
    for disabled in (False, True):
        if disabled:
            with nd.optional_kernels_disabled(needle_device):
                got = nd.conv2d_nhwc(a, kern, stride, padding).numpy()
        else:
            got = nd.conv2d_nhwc(a, kern, stride, padding).numpy()
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, **reduction_tol(k * k * 3, 4.0))


# -- dtypes ------------------------------------------------------------------------------------------
def test_implicit_dtype_conversion(needle_device):
    a64 = nd.NDArray(np.ones((2, 2), dtype=np.float64), device=needle_device)
    assert a64.dtype == ("float64" if "float64" in needle_device.dtypes else "float32")
    assert nd.NDArray(np.ones(3, dtype=np.int64), device=needle_device).dtype == "float32"
    assert nd.array(np.ones(3, dtype=np.float64), device=needle_device).dtype == "float32"  # nd.array's default


def test_explicit_unsupported_dtype_is_an_error(needle_device):
    for make in (
        lambda: nd.array([1.0], dtype="float16", device=needle_device),
        lambda: nd.empty((2,), dtype="int32", device=needle_device),
        lambda: nd.full((2,), 1.0, dtype="float16", device=needle_device),
        lambda: nd.NDArray(np.ones(2), device=needle_device, dtype=np.float16),
    ):
        with pytest.raises(ValueError) as info:
            make()
        message = str(info.value)
        assert repr(str(needle_device)) in message and ("float16" in message or "int32" in message)
        assert "float32" in message  # says what the device holds


def test_float64_and_promotion(needle_device):
    if "float64" not in needle_device.dtypes:
        with pytest.raises(ValueError, match="float64"):
            nd.array([1.0], dtype="float64", device=needle_device)
        return
    x64 = np.random.default_rng(6).standard_normal((3, 4))
    a64 = nd.array(x64, dtype=np.float64, device=needle_device)
    a32 = nd.array(x64, device=needle_device)
    assert a64.dtype == "float64" and a32.dtype == "float32"
    np.testing.assert_array_equal(a64.numpy(), x64)
    mixed = a32 + a64
    assert mixed.dtype == "float64"
    np.testing.assert_allclose(mixed.numpy(), x64.astype(np.float32).astype(np.float64) + x64)
    assert (a64 * np.float32(2)).dtype == "float64"
    assert nd.astype(a64, "float32").dtype == "float32"
    p, q = nd.promote(a32, a64)
    assert p.dtype == q.dtype == "float64"
    np.testing.assert_allclose(a64.sum().numpy(), x64.sum(), rtol=1e-12)
