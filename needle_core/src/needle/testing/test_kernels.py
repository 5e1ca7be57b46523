"""Conformance of a device's kernels (docs/backends.md §2-§3), called directly.

Every primitive kernel against NumPy on random shapes, strided/broadcast/offset
views; every optional kernel the device has against NumPy and against core's
fallback composition (``optional_kernels_disabled``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from needle_core.kernels import ELEMENTWISE, KERNEL_SPECS, PRIMITIVE_KERNELS, REDUCTIONS_BY_NAME

from needle_core import backend_ndarray as nd

from ._reference import (
    EWISE_TOL,
    SETTINGS,
    alloc,
    disjoint_views,
    dtypes_of,
    extent,
    np_conv_nhwc,
    np_conv_nhwc_grad_input,
    np_conv_nhwc_grad_weight,
    np_logsumexp,
    np_view,
    read,
    reduction_tol,
    seeds,
    shapes,
    strided_views,
    to_device,
)

DTYPES = ("float32", "float64")


def _need_dtype(device, dtype: str) -> None:
    if dtype not in dtypes_of(device):
        pytest.skip(f"{str(device)!r} does not hold {dtype}")


def _random_in(device, dtype: str, seed: int, *shapes) -> list[np.ndarray]:
    """Standard-normal arrays of ``shapes`` in ``dtype``, drawn in order from ``seed``
    (the test is skipped where the device does not hold ``dtype``)."""
    _need_dtype(device, dtype)
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for shape in shapes]


def _need_kernel(device, name: str):
    kernel = getattr(device, name, None)
    if kernel is None:
        pytest.skip(f"{str(device)!r} has no optional kernel {name}")
    return kernel


# -- buffers ------------------------------------------------------------------------------
def test_every_primitive_is_present(needle_device):
    missing = [name for name in PRIMITIVE_KERNELS if getattr(needle_device, name, None) is None]
    assert not missing, f"{str(needle_device)!r} lacks primitive kernels {missing}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_array_buffer(needle_device, dtype):
    _need_dtype(needle_device, dtype)
    buf = alloc(needle_device, 37, dtype)
    assert buf.size == 37
    assert getattr(buf, "dtype", "float32") == dtype
    assert isinstance(buf.ptr(), int) and buf.ptr() == buf.ptr()
    assert alloc(needle_device, 37, dtype).ptr() != buf.ptr()


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(size=st.integers(1, 300), seed=seeds)
def test_from_numpy_to_numpy_roundtrip(needle_device, dtype, size, seed):
    (host,) = _random_in(needle_device, dtype, seed, size)
    back = read(needle_device, to_device(needle_device, host), (size,))
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, host)


@SETTINGS
@given(size=st.integers(1, 300), value=st.floats(-1e6, 1e6, width=32))
def test_fill(needle_device, size, value):
    buf = alloc(needle_device, size)
    needle_device.fill(buf, float(value))
    np.testing.assert_array_equal(read(needle_device, buf, (size,)), np.full(size, value, dtype=np.float32))


# -- strided copies ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(view=strided_views(), seed=seeds)
def test_compact_of_strided_broadcast_offset_views(needle_device, dtype, view, seed):
    shape, strides, offset, size = view
    (base,) = _random_in(needle_device, dtype, seed, size)
    out = alloc(needle_device, math.prod(shape), dtype)
    needle_device.compact(to_device(needle_device, base), out, shape, strides, offset)
    np.testing.assert_array_equal(read(needle_device, out, shape), np_view(base, shape, strides, offset))


@SETTINGS
@given(view=strided_views(), seed=seeds)
def test_to_numpy_of_views(needle_device, view, seed):
    shape, strides, offset, size = view
    base = np.random.default_rng(seed).standard_normal(size).astype(np.float32)
    got = np.asarray(needle_device.to_numpy(to_device(needle_device, base), shape, strides, offset))
    assert got.shape == shape
    np.testing.assert_array_equal(got, np_view(base, shape, strides, offset))


def _expected_after_write(base: np.ndarray, shape, strides, offset, values) -> np.ndarray:
    expected = base.copy()
    item = expected.itemsize
    window = np.lib.stride_tricks.as_strided(expected[offset:], shape=shape, strides=tuple(s * item for s in strides))
    window[...] = values
    return expected


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(view=disjoint_views(), seed=seeds)
def test_ewise_setitem_into_views(needle_device, dtype, view, seed):
    shape, strides, offset, base_shape = view
    base, src = _random_in(needle_device, dtype, seed, math.prod(base_shape), shape)
    out = to_device(needle_device, base)
    needle_device.ewise_setitem(to_device(needle_device, src), out, shape, strides, offset)
    expected = _expected_after_write(base, shape, strides, offset, src)
    np.testing.assert_array_equal(read(needle_device, out, (base.size,)), expected)


@SETTINGS
@given(view=disjoint_views(), seed=seeds, value=st.floats(-100, 100, width=32))
def test_scalar_setitem_into_views(needle_device, view, seed, value):
    shape, strides, offset, base_shape = view
    base = np.random.default_rng(seed).standard_normal(math.prod(base_shape)).astype(np.float32)
    out = to_device(needle_device, base)
    needle_device.scalar_setitem(math.prod(shape), float(value), out, shape, strides, offset)
    expected = _expected_after_write(base, shape, strides, offset, value)
    np.testing.assert_array_equal(read(needle_device, out, (base.size,)), expected)


# -- the elementwise family, one test per row of the table ----------------------------------------
_POSITIVE = {"ewise_log", "ewise_sqrt", "ewise_power", "scalar_power"}
_TIES = {"ewise_eq", "scalar_eq", "ewise_ge", "scalar_ge"}


def _operands(name: str, size: int, rng: np.random.Generator, dtype: str):
    """Inputs inside each kernel's domain (ties for comparisons, no division by ~0)."""
    if name in _TIES:
        a = rng.integers(-2, 3, size).astype(dtype)
        b = rng.integers(-2, 3, size).astype(dtype)
        return a, b, float(rng.integers(-2, 3))
    a = rng.uniform(0.1, 3.0, size) if name in _POSITIVE else rng.uniform(-3.0, 3.0, size)
    if name in ("ewise_div", "scalar_div"):
        b = rng.uniform(0.5, 2.0, size) * rng.choice([-1.0, 1.0], size)
        val = float(rng.choice([-1.5, -0.5, 0.75, 2.0]))
    elif name == "ewise_power":
        b = rng.uniform(-2.0, 2.0, size)
        val = 0.0
    else:
        b = rng.uniform(-3.0, 3.0, size)
        val = (
            float(rng.choice([0.5, 2.0, -1.0, 3.0, 1.5, 0.0])) if name == "scalar_power" else float(rng.uniform(-3, 3))
        )
    return a.astype(dtype), b.astype(dtype), val


def _run_row(device, row, a: np.ndarray, b: np.ndarray, val: float) -> np.ndarray:
    kernel = getattr(device, row.name)
    out = alloc(device, a.size, a.dtype.name)
    if row.arity == 1:
        kernel(to_device(device, a), out)
    elif row.is_scalar:
        kernel(to_device(device, a), val, out)
    else:
        kernel(to_device(device, a), to_device(device, b), out)
    return read(device, out, a.shape)


def _reference_row(row, a: np.ndarray, b: np.ndarray, val: float) -> np.ndarray:
    out = np.empty_like(a)
    with np.errstate(all="ignore"):
        if row.arity == 1:
            row.numpy(a, out=out)
        elif row.is_scalar:
            row.numpy(a, a.dtype.type(val), out=out)
        else:
            row.numpy(a, b, out=out)
    return out


@pytest.mark.parametrize("row", ELEMENTWISE, ids=[r.name for r in ELEMENTWISE])
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(size=st.integers(1, 300), seed=seeds)
def test_elementwise_row(needle_device, row, dtype, size, seed):
    _need_dtype(needle_device, dtype)
    if not row.required:
        _need_kernel(needle_device, row.name)
    a, b, val = _operands(row.name, size, np.random.default_rng(seed), dtype)
    got = _run_row(needle_device, row, a, b, val)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, _reference_row(row, a, b, val), **EWISE_TOL)


_SPECIALS = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 1e-30, 88.0, -88.0], dtype=np.float32)


@pytest.mark.parametrize("row", ELEMENTWISE, ids=[r.name for r in ELEMENTWISE])
def test_elementwise_row_special_values(needle_device, row):
    """inf, -0.0 and NaN behave as in C/NumPy (no fast-math): every pair of specials."""
    if not row.required:
        _need_kernel(needle_device, row.name)
    a = np.repeat(_SPECIALS, _SPECIALS.size)
    b = np.tile(_SPECIALS, _SPECIALS.size)
    for val in (0.0, 1.0, -np.inf, np.nan) if row.is_scalar else (0.0,):
        with np.errstate(all="ignore"):
            got = _run_row(needle_device, row, a, b, float(val))
        np.testing.assert_allclose(got, _reference_row(row, a, b, float(val)), equal_nan=True, **EWISE_TOL)


def _same_special(got: float, expected: float) -> bool:
    """Equal as IEEE values: NaN matches NaN, and a zero's sign counts."""
    if math.isnan(expected):
        return math.isnan(got)
    return got == expected and (expected != 0 or math.copysign(1, got) == math.copysign(1, expected))


_SPECIAL_ROWS = [r for r in ELEMENTWISE if r.special]


@pytest.mark.parametrize("row", _SPECIAL_ROWS, ids=[r.name for r in _SPECIAL_ROWS])
def test_elementwise_row_declared_special_values(needle_device, row):
    """Each row's declared special cases (kernels.py ``special``): the device and the
    NumPy reference both give the stated IEEE value (e.g. C pow: (-inf) ** 0.5 = inf)."""
    if not row.required:
        _need_kernel(needle_device, row.name)
    for case in row.special:
        a = np.array([case.args[0]], np.float32)
        b = np.array([case.args[-1]], np.float32)
        with np.errstate(all="ignore"):
            got = float(_run_row(needle_device, row, a, b, float(case.args[-1]))[0])
            ref = float(_reference_row(row, a, b, float(case.args[-1]))[0])
        assert _same_special(got, case.expected), f"{row.name}{case.args} = {got}, expected {case.expected}"
        assert _same_special(ref, case.expected), f"{row.name}{case.args}: the NumPy reference gives {ref}"


_BLOCK_SPECS = [s for s in KERNEL_SPECS if s.special and s.params == ("a", "out", "reduce_size")]


@pytest.mark.parametrize("spec", _BLOCK_SPECS, ids=[s.name for s in _BLOCK_SPECS])
def test_block_kernel_declared_special_values(needle_device, spec):
    """Reductions and logsumexp over one block holding inf/NaN (e.g. logsumexp of a
    block holding +inf is +inf): the device and the NumPy reference give the stated value."""
    kernel = getattr(needle_device, spec.name, None)
    if kernel is None:
        pytest.skip(f"{str(needle_device)!r} has no optional kernel {spec.name}")
    row = REDUCTIONS_BY_NAME.get(spec.name)
    neutral = row.identity if row is not None else -np.inf  # logsumexp ignores -inf elements
    for case in spec.special:
        short = np.array(case.args[0], np.float32)
        # also inside a long block (backends switch to tree/split kernels for long rows)
        for block in (short, np.concatenate([np.full(5000, neutral, np.float32), short])):
            out = alloc(needle_device, 1)
            with np.errstate(all="ignore"):
                kernel(to_device(needle_device, block), out, block.size)
                got = float(read(needle_device, out, (1,))[0])
                ref = float(row.numpy(block, 0) if row is not None else np_logsumexp(block))
            what = f"{spec.name} over {block.size} elements ending {case.args[0]}"
            assert _same_special(got, case.expected), f"{what} = {got}, expected {case.expected}"
            assert _same_special(ref, case.expected), f"{what}: the NumPy reference gives {ref}"


# -- ewise_strided: binary rows over strided views ------------------------------------------------
_BINARY_ROWS = [r for r in ELEMENTWISE if r.arity == 2 and not r.is_scalar]
_LIBM_ROWS = {"ewise_power"}  # libm calls: SIMD and scalar lanes may differ by an ulp


@st.composite
def _operand_view(draw, shape: tuple) -> tuple[tuple, int, int]:
    """``(strides, offset, buffer_size)`` of a view over ``shape``: either random strides
    (overlapping, any order) or a permuted compact layout with broadcast (stride 0)
    axes, so contiguous and broadcast last axes both occur."""
    offset = draw(st.integers(0, 7))
    if draw(st.booleans()):
        strides = tuple(draw(st.integers(0, 9)) for _ in shape)
    else:
        order = draw(st.permutations(range(len(shape))))
        acc, strides_l = 1, [0] * len(shape)
        for axis in reversed(order):
            strides_l[axis] = acc
            acc *= shape[axis]
        strides = tuple(0 if draw(st.integers(0, 3)) == 0 else s for s in strides_l)
    return strides, offset, extent(shape, strides, offset) + draw(st.integers(0, 3))


@st.composite
def _strided_pair(draw):
    shape = draw(shapes(0, 3, 1, 5)) + (draw(st.integers(1, 40)),)
    return shape, draw(_operand_view(shape)), draw(_operand_view(shape))


def _strided_case(device, row, shape, va, vb, seed, dtype):
    """(kernel result, NumPy reference, compact-kernel result on compacted operands)."""
    (sa, oa, na), (sb, ob, nb) = va, vb
    rng = np.random.default_rng(seed)
    base_a, base_b, _ = _operands(row.name, max(na, nb), rng, dtype)
    base_a, base_b = base_a[:na], base_b[:nb]
    a, b = np_view(base_a, shape, sa, oa), np_view(base_b, shape, sb, ob)
    size = math.prod(shape)
    out = alloc(device, size, dtype)
    device.ewise_strided(row.name, to_device(device, base_a), sa, oa, to_device(device, base_b), sb, ob, out, shape)
    compact = _run_row(device, row, np.ascontiguousarray(a).reshape(-1), np.ascontiguousarray(b).reshape(-1), 0.0)
    ref = np.empty(shape, dtype)
    with np.errstate(all="ignore"):
        row.numpy(a, b, out=ref)
    return read(device, out, shape), ref, compact.reshape(shape)


@pytest.mark.parametrize("row", _BINARY_ROWS, ids=[r.name for r in _BINARY_ROWS])
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(case=_strided_pair(), seed=seeds)
def test_ewise_strided_kernel(needle_device, row, dtype, case, seed):
    _need_kernel(needle_device, "ewise_strided")
    _need_dtype(needle_device, dtype)
    if not row.required:
        _need_kernel(needle_device, row.name)
    shape, va, vb = case
    got, ref, compact = _strided_case(needle_device, row, shape, va, vb, seed, dtype)
    np.testing.assert_allclose(got, ref, **EWISE_TOL)
    if row.name in _LIBM_ROWS:
        np.testing.assert_allclose(got, compact, **EWISE_TOL)
    else:  # the same arithmetic per element as the compact kernel: the same bits
        np.testing.assert_array_equal(got, compact)


def test_ewise_strided_rejects_other_rows(needle_device):
    kernel = _need_kernel(needle_device, "ewise_strided")
    buf = to_device(needle_device, np.ones(4, np.float32))
    with pytest.raises(ValueError, match="ewise_strided"):
        kernel("scalar_add", buf, (1,), 0, buf, (1,), 0, alloc(needle_device, 4), (4,))


# -- matmul and reductions -----------------------------------------------------------------------
_ODD_SIZES = st.sampled_from([1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65])


def _check_matmul(device, m: int, n: int, p: int, seed: int, dtype: str = "float32") -> None:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, n)).astype(dtype)
    b = rng.standard_normal((n, p)).astype(dtype)
    out = alloc(device, m * p, dtype)
    device.matmul(to_device(device, a), to_device(device, b), out, m, n, p)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(read(device, out, (m, p)), expected, **reduction_tol(n, 4.0, dtype))


@SETTINGS
@given(m=_ODD_SIZES, n=_ODD_SIZES, p=_ODD_SIZES, seed=seeds)
def test_matmul_odd_sizes(needle_device, m, n, p, seed):
    _check_matmul(needle_device, m, n, p, seed)


@pytest.mark.parametrize("m,n,p", [(129, 257, 65), (256, 128, 192)])
def test_matmul_larger_than_tiles(needle_device, m, n, p):
    _check_matmul(needle_device, m, n, p, seed=m * n + p)


def test_matmul_float64(needle_device):
    _need_dtype(needle_device, "float64")
    _check_matmul(needle_device, 33, 17, 9, seed=3, dtype="float64")


@pytest.mark.parametrize("name", ["reduce_sum", "reduce_max"])
@SETTINGS
@given(rows=st.integers(1, 20), reduce_size=st.integers(1, 300), seed=seeds)
def test_reduce_contiguous(needle_device, name, rows, reduce_size, seed):
    x = np.random.default_rng(seed).standard_normal((rows, reduce_size)).astype(np.float32)
    out = alloc(needle_device, rows)
    getattr(needle_device, name)(to_device(needle_device, x), out, reduce_size)
    got = read(needle_device, out, (rows,))
    if name == "reduce_max":
        np.testing.assert_array_equal(got, x.max(axis=1))
    else:
        np.testing.assert_allclose(got, x.astype(np.float64).sum(axis=1), **reduction_tol(reduce_size, 3.0))


# -- optional kernels against NumPy ----------------------------------------------------------------
@SETTINGS
@given(batch=st.integers(1, 4), m=_ODD_SIZES, n=_ODD_SIZES, p=_ODD_SIZES, seed=seeds)
def test_batched_matmul(needle_device, batch, m, n, p, seed):
    kernel = _need_kernel(needle_device, "batched_matmul")
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((batch, m, n)).astype(np.float32)
    b = rng.standard_normal((batch, n, p)).astype(np.float32)
    out = alloc(needle_device, batch * m * p)
    kernel(to_device(needle_device, a), to_device(needle_device, b), out, batch, m, n, p)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(read(needle_device, out, (batch, m, p)), expected, **reduction_tol(n, 4.0))


@SETTINGS
@given(m=_ODD_SIZES, n=_ODD_SIZES, p=_ODD_SIZES, trans_a=st.booleans(), trans_b=st.booleans(), seed=seeds)
def test_matmul_t(needle_device, m, n, p, trans_a, trans_b, seed):
    kernel = _need_kernel(needle_device, "matmul_t")
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, n)).astype(np.float32)
    b = rng.standard_normal((n, p)).astype(np.float32)
    stored_a = np.ascontiguousarray(a.T) if trans_a else a  # the buffer holds the transpose
    stored_b = np.ascontiguousarray(b.T) if trans_b else b
    out = alloc(needle_device, m * p)
    kernel(to_device(needle_device, stored_a), to_device(needle_device, stored_b), out, m, n, p, trans_a, trans_b)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(read(needle_device, out, (m, p)), expected, **reduction_tol(n, 4.0))


@pytest.mark.parametrize("name", ["reduce_sum_view", "reduce_max_view"])
@SETTINGS
@given(view=strided_views(), data=st.data(), seed=seeds)
def test_reduce_view(needle_device, name, view, data, seed):
    kernel = _need_kernel(needle_device, name)
    shape, strides, offset, size = view
    reduce_ndim = data.draw(st.integers(1, len(shape)), label="reduce_ndim")
    base = np.random.default_rng(seed).standard_normal(size).astype(np.float32)
    kept = shape[: len(shape) - reduce_ndim]
    out = alloc(needle_device, math.prod(kept))
    kernel(to_device(needle_device, base), out, shape, strides, offset, reduce_ndim)
    src = np_view(base, shape, strides, offset).astype(np.float64)
    axes = tuple(range(len(kept), len(shape)))
    got = read(needle_device, out, kept)
    if name == "reduce_max_view":
        np.testing.assert_array_equal(got, src.max(axis=axes).astype(np.float32))
    else:
        np.testing.assert_allclose(got, src.sum(axis=axes), **reduction_tol(math.prod(shape[len(kept) :]), 3.0))


@SETTINGS
@given(rows=st.integers(1, 12), reduce_size=st.integers(1, 200), seed=seeds)
def test_logsumexp_kernel(needle_device, rows, reduce_size, seed):
    kernel = _need_kernel(needle_device, "logsumexp")
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, reduce_size)) * 30).astype(np.float32)
    x[0, :] = -np.inf  # an all -inf block gives -inf
    if rows > 1:
        x[1, 0] = -np.inf
    out = alloc(needle_device, rows)
    kernel(to_device(needle_device, x), out, reduce_size)
    np.testing.assert_allclose(read(needle_device, out, (rows,)), np_logsumexp(x, axes=1), rtol=1e-5, atol=1e-5)


def _np_softmax_cross_entropy(x: np.ndarray, y: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 per-row loss and its logits' adjoint given the rows' upstream gradient ``g``."""
    x = x.astype(np.float64)
    rows = np.arange(x.shape[0])
    lse = np_logsumexp(x, axes=1)
    probs = np.exp(x - lse[:, None])
    probs[rows, y] -= 1.0
    return lse - x[rows, y], g[:, None] * probs


@SETTINGS
@given(
    rows=st.integers(1, 12), classes=st.integers(1, 300), scale=st.sampled_from([1.0, 30.0, 3e4]), seed=seeds,
)  # fmt: skip
def test_softmax_cross_entropy_kernels(needle_device, rows, classes, scale, seed):
    forward = _need_kernel(needle_device, "softmax_cross_entropy")
    backward = _need_kernel(needle_device, "softmax_cross_entropy_backward")
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, classes)) * scale).astype(np.float32)  # 3e4: exp overflows unshifted
    y = rng.integers(0, classes, rows)
    g = rng.standard_normal(rows).astype(np.float32)
    want_loss, want_grad = _np_softmax_cross_entropy(x, y, g.astype(np.float64))
    labels = to_device(needle_device, y.astype(np.float32))
    out, dlogits = alloc(needle_device, rows), alloc(needle_device, rows * classes)
    forward(to_device(needle_device, x), labels, out, rows, classes)
    backward(to_device(needle_device, x), labels, to_device(needle_device, g), dlogits, rows, classes)
    # the loss carries the rounding of logsumexp at the logits' magnitude
    atol = 8 * float(np.finfo(np.float32).eps) * (np.abs(x).max() + 1.0)
    np.testing.assert_allclose(read(needle_device, out, (rows,)), want_loss, rtol=1e-5, atol=atol)
    np.testing.assert_allclose(read(needle_device, dlogits, (rows, classes)), want_grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("bad", [-1.0, 5.0, 1.5, np.nan])
def test_softmax_cross_entropy_kernels_reject_bad_labels(needle_device, bad):
    forward = _need_kernel(needle_device, "softmax_cross_entropy")
    backward = _need_kernel(needle_device, "softmax_cross_entropy_backward")
    x = to_device(needle_device, np.zeros((2, 5), np.float32))
    labels = to_device(needle_device, np.array([0.0, bad], np.float32))
    with pytest.raises(ValueError, match="labels"):
        forward(x, labels, alloc(needle_device, 2), 2, 5)
    with pytest.raises(ValueError, match="labels"):
        backward(x, labels, to_device(needle_device, np.ones(2, np.float32)), alloc(needle_device, 10), 2, 5)


def test_softmax_cross_entropy_special_logits_match_the_composition(needle_device):
    """+inf, NaN and -inf logits give what the composed loss gives (docs/backends.md §3)."""
    _need_kernel(needle_device, "softmax_cross_entropy")
    _need_kernel(needle_device, "softmax_cross_entropy_backward")
    inf, nan = np.inf, np.nan
    x = np.array([[1.0, inf, 2.0], [inf, 0.0, 1.0], [1.0, nan, 0.0], [-inf, -inf, -inf], [-inf, 3.0, 1.0],
                  [0.5, -1.0, 2.0]], np.float32)  # fmt: skip
    y = np.array([0, 0, 2, 1, 1, 2], np.float32)
    g = np.array([1.0, -2.0, 0.5, 1.0, 3.0, -1.0], np.float32)
    logits, labels, grad = (nd.array(v, device=needle_device) for v in (x, y, g))
    fused = [nd.softmax_cross_entropy(logits, labels), nd.softmax_cross_entropy_backward(logits, labels, grad)]
    with nd.optional_kernels_disabled(needle_device):
        composed = [nd.softmax_cross_entropy(logits, labels), nd.softmax_cross_entropy_backward(logits, labels, grad)]
    for got, want in zip(fused, composed, strict=True):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-6)  # NaN == NaN, inf == inf


@SETTINGS
@given(
    n=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9), c_in=st.integers(1, 4),
    c_out=st.integers(1, 4), k=st.integers(1, 4), stride=st.integers(1, 3), seed=seeds,
)  # fmt: skip
def test_conv2d_nhwc_kernel(needle_device, n, h, w, c_in, c_out, k, stride, seed):
    kernel = _need_kernel(needle_device, "conv2d_nhwc")
    h, w = h + k - 1, w + k - 1  # the input is already padded: at least one window fits
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, h, w, c_in)).astype(np.float32)
    wt = rng.standard_normal((k, k, c_in, c_out)).astype(np.float32)
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    out = alloc(needle_device, n * ho * wo * c_out)
    kernel(to_device(needle_device, a), to_device(needle_device, wt), out, a.shape, wt.shape, stride)
    expected = np_conv_nhwc(a, wt, stride)
    np.testing.assert_allclose(read(needle_device, out, expected.shape), expected, **reduction_tol(k * k * c_in, 4.0))


_CONV_GRAD_CASE = dict(
    n=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9), c_in=st.integers(1, 5),
    c_out=st.integers(1, 5), k=st.integers(1, 4), stride=st.integers(1, 3), padding=st.integers(0, 2), seed=seeds,
)  # fmt: skip


def _conv_grad_case(n, h, w, c_in, c_out, k, stride, padding, seed):
    """Unpadded input, kernel and output adjoint; the input is grown so one window fits."""
    h, w = max(h, k - 2 * padding), max(w, k - 2 * padding)
    ho, wo = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, h, w, c_in)).astype(np.float32)
    wt = rng.standard_normal((k, k, c_in, c_out)).astype(np.float32)
    g = rng.standard_normal((n, ho, wo, c_out)).astype(np.float32)
    return x, wt, g


@SETTINGS
@given(**_CONV_GRAD_CASE)
def test_conv2d_nhwc_padded_kernel(needle_device, n, h, w, c_in, c_out, k, stride, padding, seed):
    kernel = _need_kernel(needle_device, "conv2d_nhwc_padded")
    x, wt, g = _conv_grad_case(n, h, w, c_in, c_out, k, stride, padding, seed)
    out = to_device(needle_device, np.full(g.shape, np.nan, np.float32))  # every element must be written
    kernel(to_device(needle_device, x), to_device(needle_device, wt), out, x.shape, wt.shape, stride, padding)
    expected = np_conv_nhwc(np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0))), wt, stride)
    np.testing.assert_allclose(read(needle_device, out, g.shape), expected, **reduction_tol(k * k * c_in, 4.0))


@SETTINGS
@given(**_CONV_GRAD_CASE)
def test_conv2d_nhwc_grad_input_kernel(needle_device, n, h, w, c_in, c_out, k, stride, padding, seed):
    kernel = _need_kernel(needle_device, "conv2d_nhwc_grad_input")
    x, wt, g = _conv_grad_case(n, h, w, c_in, c_out, k, stride, padding, seed)
    out = alloc(needle_device, x.size)
    out_is_overwritten = to_device(needle_device, np.full(x.shape, np.nan, np.float32))
    for buf in (out, out_is_overwritten):
        kernel(to_device(needle_device, g), to_device(needle_device, wt), buf, x.shape, wt.shape, stride, padding)
        expected = np_conv_nhwc_grad_input(g, wt, stride, padding, x.shape[1:3])
        # each input pixel sums at most K*K windows of C_out terms
        np.testing.assert_allclose(read(needle_device, buf, x.shape), expected, **reduction_tol(k * k * c_out, 4.0))


@SETTINGS
@given(**_CONV_GRAD_CASE)
def test_conv2d_nhwc_grad_weight_kernel(needle_device, n, h, w, c_in, c_out, k, stride, padding, seed):
    kernel = _need_kernel(needle_device, "conv2d_nhwc_grad_weight")
    x, wt, g = _conv_grad_case(n, h, w, c_in, c_out, k, stride, padding, seed)
    out = to_device(needle_device, np.full(wt.shape, np.nan, np.float32))
    kernel(to_device(needle_device, x), to_device(needle_device, g), out, x.shape, wt.shape, stride, padding)
    expected = np_conv_nhwc_grad_weight(x, g, k, stride, padding)
    np.testing.assert_allclose(read(needle_device, out, wt.shape), expected, **reduction_tol(g.size // c_out, 4.0))


@pytest.mark.parametrize("name", ["conv2d_nhwc_padded", "conv2d_nhwc_grad_input", "conv2d_nhwc_grad_weight"])
def test_conv2d_nhwc_padded_kernels_reject_bad_shapes(needle_device, name):
    kernel = _need_kernel(needle_device, name)
    x, wt, g = (alloc(needle_device, n) for n in (2 * 5 * 5 * 3, 3 * 3 * 3 * 4, 2 * 25 * 4))
    first, second, out = {"conv2d_nhwc_padded": (x, wt, g), "conv2d_nhwc_grad_input": (g, wt, x),
                          "conv2d_nhwc_grad_weight": (x, g, wt)}[name]
    with pytest.raises(ValueError, match="C_in"):  # the kernel's C_in differs from the input's channels
        kernel(first, second, out, (2, 5, 5, 2), (3, 3, 3, 4), 1, 1)
    with pytest.raises(ValueError, match="does not fit"):  # a 3x3 kernel does not fit a 1x1 input, no padding
        kernel(first, second, out, (2, 1, 1, 3), (3, 3, 3, 4), 1, 0)


@SETTINGS
@given(rows=st.integers(1, 300), channels=st.integers(1, 40), shift=st.floats(-100, 100), seed=seeds)
def test_batchnorm_forward_kernel(needle_device, rows, channels, shift, seed):
    kernel = _need_kernel(needle_device, "batchnorm_forward")
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((rows, channels)) * 3 + shift).astype(np.float32)  # a large mean: two-pass variance
    w, b = rng.standard_normal(channels).astype(np.float32), rng.standard_normal(channels).astype(np.float32)
    eps = 1e-5
    bufs = [alloc(needle_device, n) for n in (x.size, x.size, channels, channels, channels)]
    kernel(to_device(needle_device, x), to_device(needle_device, w), to_device(needle_device, b), *bufs, rows,
           channels, eps)
    out, xhat, mean, var, inv_std = (read(needle_device, buf, shape) for buf, shape in
                                     zip(bufs, [x.shape, x.shape, (channels,), (channels,), (channels,)], strict=True))
    x64 = x.astype(np.float64)
    want_mean, want_var = x64.mean(0), x64.var(0)
    want_xhat = (x64 - want_mean) / np.sqrt(want_var + eps)
    tol = reduction_tol(rows, 4.0)
    np.testing.assert_allclose(mean, want_mean, rtol=tol["rtol"], atol=tol["atol"] * (1 + abs(shift)))
    np.testing.assert_allclose(var, want_var, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(inv_std, 1 / np.sqrt(want_var + eps), rtol=1e-4)
    # x̂ loses the digits the mean cancels: its error scales with |shift| / std
    scale = (1 + abs(shift)) * np.sqrt(1 / (want_var + eps))
    np.testing.assert_allclose(xhat, want_xhat, rtol=1e-4, atol=1e-5 * scale.max())
    np.testing.assert_allclose(out, want_xhat * w + b, rtol=1e-4, atol=1e-5 * (scale * (1 + abs(w))).max())


@SETTINGS
@given(rows=st.integers(1, 300), channels=st.integers(1, 40), seed=seeds)
def test_batchnorm_backward_kernel(needle_device, rows, channels, seed):
    kernel = _need_kernel(needle_device, "batchnorm_backward")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, channels)) * 3 + 1
    inv_std = (1 / np.sqrt(x.var(0) + 1e-5)).astype(np.float32)
    xhat = ((x - x.mean(0)) * inv_std).astype(np.float32)
    g = rng.standard_normal((rows, channels)).astype(np.float32)
    w = rng.standard_normal(channels).astype(np.float32)
    bufs = [alloc(needle_device, n) for n in (g.size, channels, channels)]
    kernel(*(to_device(needle_device, a) for a in (g, xhat, w, inv_std)), *bufs, rows, channels)
    dx, dw, db = (read(needle_device, buf, shape) for buf, shape in
                  zip(bufs, [g.shape, (channels,), (channels,)], strict=True))
    g64, h64, w64, s64 = (a.astype(np.float64) for a in (g, xhat, w, inv_std))
    want_db, want_dw = g64.sum(0), (g64 * h64).sum(0)
    want_dx = w64 * s64 / rows * (rows * g64 - want_db - h64 * want_dw)
    tol = reduction_tol(rows, 4.0)
    np.testing.assert_allclose(db, want_db, rtol=tol["rtol"], atol=tol["atol"] * np.sqrt(rows))
    np.testing.assert_allclose(dw, want_dw, rtol=tol["rtol"], atol=tol["atol"] * np.sqrt(rows))
    # dx cancels rows·g against the two sums (each ~ rows·|g|): error relative to that scale
    scale = np.abs(w64 * s64) * (np.abs(g64).max(0) + (np.abs(want_db) + np.abs(want_dw) * np.abs(h64).max(0)) / rows)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-4, atol=1e-5 * scale.max())


def test_sgd_update_kernel(needle_device):
    kernel = _need_kernel(needle_device, "sgd_update")
    rng = np.random.default_rng(0)
    w, g, u = (rng.standard_normal(257).astype(np.float32) for _ in range(3))
    lr, momentum, wd = 0.1, 0.9, 0.01
    bw, bg, bu = to_device(needle_device, w), to_device(needle_device, g), to_device(needle_device, u)
    kernel(bw, bg, bu, w.size, lr, momentum, wd)
    g2 = g + wd * w
    u2 = momentum * u + (1 - momentum) * g2
    np.testing.assert_allclose(read(needle_device, bu, (257,)), u2, **EWISE_TOL)
    np.testing.assert_allclose(read(needle_device, bw, (257,)), w - lr * u2, **EWISE_TOL)
    np.testing.assert_array_equal(read(needle_device, bg, (257,)), g)


def test_adam_update_kernel(needle_device):
    kernel = _need_kernel(needle_device, "adam_update")
    rng = np.random.default_rng(1)
    w, g, m = (rng.standard_normal(257).astype(np.float32) for _ in range(3))
    v = rng.uniform(0, 1, 257).astype(np.float32)
    lr, b1, b2, eps, wd, t = 0.01, 0.9, 0.999, 1e-8, 0.01, 3
    bufs = [to_device(needle_device, x) for x in (w, g, m, v)]
    kernel(*bufs, w.size, lr, b1, b2, eps, wd, t)
    g2 = g + wd * w
    m2 = b1 * m + (1 - b1) * g2
    v2 = b2 * v + (1 - b2) * g2**2
    w2 = w - lr * (m2 / (1 - b1**t)) / (np.sqrt(v2 / (1 - b2**t)) + eps)
    for buf, expected in zip((bufs[0], bufs[2], bufs[3]), (w2, m2, v2), strict=True):
        np.testing.assert_allclose(read(needle_device, buf, (257,)), expected, rtol=1e-5, atol=1e-6)


def test_matmul_tiled_kernel(needle_device):
    kernel = _need_kernel(needle_device, "matmul_tiled")
    t = int(needle_device.__tile_size__)
    m, n, p = 3 * t, 2 * t, 4 * t
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((m, n)).astype(np.float32), rng.standard_normal((n, p)).astype(np.float32)

    def tiles(x: np.ndarray) -> np.ndarray:  # (r, c) -> tile-major (r/T, c/T, T, T)
        r, c = x.shape
        return np.ascontiguousarray(x.reshape(r // t, t, c // t, t).transpose(0, 2, 1, 3))

    out = alloc(needle_device, m * p)
    kernel(to_device(needle_device, tiles(a)), to_device(needle_device, tiles(b)), out, m, n, p)
    expected = tiles(a.astype(np.float64) @ b.astype(np.float64))
    np.testing.assert_allclose(read(needle_device, out, expected.shape), expected, **reduction_tol(n, 4.0))


# -- optional kernels against core's fallback compositions -------------------------------------------
def _positive(shape, rng):
    return rng.uniform(0.1, 3.0, shape).astype(np.float32)


def _normal(shape, rng):
    return rng.standard_normal(shape).astype(np.float32)


def _normalised_columns(x):
    return ((x - x.mean(0)) / x.std(0)).astype(np.float32)


def _strided_ops(a, b):
    """Binary ops on sliced+permuted, offset and broadcast views of ``a (4, 5, 12)`` and
    ``b (1, 6, 1)`` (core routes them to ewise_strided)."""
    x, x1 = a[:, :, 0:12:2].permute((0, 2, 1)), a[:, :, 1:12:2].permute((0, 2, 1))
    bb = b.broadcast_to((4, 6, 5))
    y = ((x + bb) / bb).maximum(x1) * bb
    return (y >= x) + (x1 == x) + y


# kernel -> (inputs from a rng, the NDArray function exercising it, tolerance)
_FALLBACK_CASES = {
    "ewise_power": (lambda r: (_positive((4, 7), r), _normal((4, 7), r)), nd.power, EWISE_TOL),
    "ewise_neg": (lambda r: (_normal((5, 3), r),), nd.neg, EWISE_TOL),
    "ewise_sqrt": (lambda r: (_positive((5, 3), r),), nd.sqrt, EWISE_TOL),
    "ewise_sigmoid": (lambda r: (_normal((5, 3), r) * 5,), nd.sigmoid, EWISE_TOL),
    "ewise_relu": (lambda r: (_normal((5, 3), r),), nd.relu, EWISE_TOL),
    "ewise_strided": (
        lambda r: (_normal((4, 5, 12), r), _positive((1, 6, 1), r)),
        _strided_ops,
        {"rtol": 0, "atol": 0},  # the same arithmetic as compact + ewise_*: the same bits
    ),
    "batched_matmul": (lambda r: (_normal((2, 3, 4, 5), r), _normal((3, 5, 6), r)), nd.matmul, reduction_tol(5, 4.0)),
    # x.T @ w, x @ w.T and x.T @ w.T of transposed views, as a backward pass forms them
    "matmul_t": (
        lambda r: (_normal((17, 5), r), _normal((17, 33), r), _normal((5, 33), r), _normal((4, 17), r)),
        lambda x, g, v, u: (nd.matmul(x.permute((1, 0)), g), nd.matmul(g, v.permute((1, 0))),
                            nd.matmul(g.permute((1, 0)), u.permute((1, 0)))),
        reduction_tol(33, 4.0),
    ),
    "reduce_sum_view": (
        lambda r: (_normal((3, 4, 5), r),),
        lambda a: a.permute((2, 0, 1)).sum((0, 2)),
        reduction_tol(15, 3.0),
    ),
    "reduce_max_view": (
        lambda r: (_normal((3, 4, 5), r),),
        lambda a: a.permute((2, 0, 1)).max((1, 2), keepdims=True),
        EWISE_TOL,
    ),
    "logsumexp": (lambda r: (_normal((3, 4, 5), r) * 10,), lambda a: nd.logsumexp(a, (0, 2)), EWISE_TOL),
    "conv2d_nhwc": (
        lambda r: (_normal((2, 7, 6, 3), r), _normal((3, 3, 3, 4), r)),
        lambda a, w: nd.conv2d_nhwc(a, w, stride=2, padding=0),
        reduction_tol(27, 4.0),
    ),
    # stride 2 with padding 1; a 3x3 kernel over 1x1 images padded by 1 (only its centre
    # tap is live); padding 3 > K - 1 (border outputs see only padding)
    "conv2d_nhwc_padded": (
        lambda r: (_normal((2, 7, 6, 3), r), _normal((3, 3, 3, 4), r), _normal((5, 1, 1, 3), r)),
        lambda a, w, b: (nd.conv2d_nhwc(a, w, stride=2, padding=1), nd.conv2d_nhwc(b, w, stride=1, padding=1),
                         nd.conv2d_nhwc(a, w, stride=1, padding=3)),
        reduction_tol(27, 4.0),
    ),
    # stride 2 with a leftover row and column, padding 1: the windows clip at every edge
    "conv2d_nhwc_grad_input": (
        lambda r: (_normal((2, 4, 3, 5), r), _normal((3, 3, 6, 5), r)),
        lambda g, w: nd.conv2d_nhwc_grad_input(g, w, 2, 1, (8, 6)),
        reduction_tol(45, 4.0),
    ),
    "conv2d_nhwc_grad_weight": (
        lambda r: (_normal((2, 8, 6, 6), r), _normal((2, 4, 3, 5), r)),
        lambda x, g: nd.conv2d_nhwc_grad_weight(x, g, 3, 2, 1),
        reduction_tol(24, 4.0),
    ),
    # 2 x 5 x 7 rows of 6 channels, mean far from 0
    "batchnorm_forward": (
        lambda r: (_normal((70, 6), r) * 2 + 5, _normal((6,), r), _normal((6,), r)),
        lambda x, w, b: nd.batchnorm_forward(x, w, b, 1e-5),
        {"rtol": 1e-4, "atol": 1e-5},
    ),
    # 70 rows (a partial 64-row block) of 6 channels; x̂ normalised per column
    "batchnorm_backward": (
        lambda r: (_normal((70, 6), r), _normalised_columns(_normal((70, 6), r) * 2 + 5), _normal((6,), r),
                   _positive((6,), r)),
        nd.batchnorm_backward,
        {"rtol": 1e-4, "atol": 1e-5},
    ),
    # hidden 19: SIMD bodies and scalar tails at every vector width
    "lstm_cell": (lambda r: (_normal((3, 4 * 19), r) * 3, _normal((3, 19), r)), nd.lstm_cell, EWISE_TOL),
    "lstm_cell_backward": (
        lambda r: (_normal((3, 4 * 19), r) * 3, _normal((3, 19), r), _normal((3, 19), r), _normal((3, 19), r)),
        nd.lstm_cell_backward,
        EWISE_TOL,
    ),
    # 12 draws from 7 rows: repeated rows, and rows never drawn (zero in the scatter)
    "take_rows": (lambda r: (_normal((7, 19), r), _rows(r, 7, (3, 4))), nd.take_rows, {"rtol": 0, "atol": 0}),
    "scatter_add_rows": (
        lambda r: (_normal((3, 4, 19), r), _rows(r, 7, (3, 4))),
        lambda src, index: nd.scatter_add_rows(src, index, 7),
        reduction_tol(12, 3.0),
    ),
    # 37 classes: SIMD bodies and scalar tails; logits * 20 so the max shift matters
    "softmax_cross_entropy": (
        lambda r: (_normal((5, 37), r) * 20, _rows(r, 37, (5,))),
        nd.softmax_cross_entropy,
        reduction_tol(37, 20.0),
    ),
    "softmax_cross_entropy_backward": (
        lambda r: (_normal((5, 37), r) * 20, _rows(r, 37, (5,)), _normal((5,), r)),
        nd.softmax_cross_entropy_backward,
        reduction_tol(37, 1.0),
    ),
}


def _rows(rng, rows, shape):
    return rng.integers(0, rows, shape).astype(np.float32)


@pytest.mark.parametrize("name", sorted(_FALLBACK_CASES))
def test_optional_kernel_matches_fallback(needle_device, name):
    _need_kernel(needle_device, name)
    make_inputs, fn, tol = _FALLBACK_CASES[name]
    inputs = [nd.array(x, device=needle_device) for x in make_inputs(np.random.default_rng(len(name)))]
    with_kernel = _host_results(fn(*inputs))
    with nd.optional_kernels_disabled(needle_device):
        assert getattr(needle_device, name) is None
        fallback = _host_results(fn(*inputs))
    assert getattr(needle_device, name) is not None, "optional_kernels_disabled did not restore the kernel"
    for got, want in zip(with_kernel, fallback, strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, **tol)


def _host_results(result) -> list[np.ndarray]:
    """An NDArray function's result(s) as NumPy arrays (some return a tuple)."""
    return [r.numpy() for r in result] if isinstance(result, tuple) else [result.numpy()]
