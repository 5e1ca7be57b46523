"""The cpu backend's kernels called directly, each against an independent NumPy formula.

The conformance suite (``pytest --pyargs needle.testing --needle-device cpu``) tests
the device through needle; these tests pin the C++ edge cases it cannot see: SIMD
tails, thread splits, streaming stores, blocked transposes, GEMM edge tiles, and the
argument checks that must reject bad input before touching memory.
"""

from __future__ import annotations

import numpy as np
import pytest

from cpu_kernel_support import K, dev, host
from needle.testing._reference import np_conv_nhwc
from needle_core.kernels import ELEMENTWISE

RNG = np.random.default_rng(0)
SIZES = [0, 1, 15, 16, 17, 33, 1000, 70001]
BASE = 12_000  # elements of the buffer strided views are taken from


def rand(*shape, low=-2.0, high=2.0) -> np.ndarray:
    return RNG.uniform(low, high, size=shape).astype(np.float32)


def reference(kernel, a, b=None):
    out = np.empty_like(a)
    with np.errstate(all="ignore"):
        if kernel.arity == 1:
            kernel.numpy(a, out=out)
        else:
            kernel.numpy(a, b, out=out)
    return out


# -- elementwise family, every row of the table ---------------------------------------


def operands(kernel, n):
    a = rand(n)
    if kernel.name in ("ewise_log", "ewise_sqrt", "ewise_power", "scalar_power"):
        a = np.abs(a) + 0.1
    if kernel.name.endswith("_eq"):
        a = np.round(a)
    b = rand(n) if not kernel.name.endswith("_eq") else np.round(rand(n))
    return a, b


@pytest.mark.parametrize("kernel", ELEMENTWISE, ids=lambda k: k.name)
@pytest.mark.parametrize("n", SIZES)
def test_elementwise_matches_numpy(kernel, n):
    a, b = operands(kernel, n)
    fn = getattr(K, kernel.name)
    out = K.Array(n)
    if kernel.arity == 1:
        fn(dev(a), out)
        want = reference(kernel, a)
    elif kernel.is_scalar:
        val = 1.5
        fn(dev(a), val, out)
        want = reference(kernel, a, np.full_like(a, val))
    else:
        fn(dev(a), dev(b), out)
        want = reference(kernel, a, b)
    np.testing.assert_allclose(host(out, (n,)), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kernel", ELEMENTWISE, ids=lambda k: k.name)
def test_elementwise_special_values(kernel):
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 1e-38, 3e38, -3e38], np.float32)
    a = np.tile(specials, 20)  # 200 elements: both SIMD bodies and scalar tails
    b = np.repeat(specials, 20)
    fn = getattr(K, kernel.name)
    out = K.Array(a.size)
    if kernel.arity == 1:
        fn(dev(a), out)
        want = reference(kernel, a)
    elif kernel.is_scalar:
        for val in (np.nan, -np.inf, -0.0, 2.0):
            fn(dev(a), float(val), out)
            want = reference(kernel, a, np.full_like(a, val))
            np.testing.assert_allclose(host(out, a.shape), want, rtol=1e-5, atol=0)
        return
    else:
        fn(dev(a), dev(b), out)
        want = reference(kernel, a, b)
    np.testing.assert_allclose(host(out, a.shape), want, rtol=1e-5, atol=0)


def test_scalar_mul_keeps_negative_zero_sign():
    out = K.Array(64)
    K.scalar_mul(dev(np.ones(64, np.float32)), -0.0, out)
    assert np.all(np.signbit(host(out, (64,))))


def test_ewise_add_large_uses_streaming_path():
    n = (1 << 22) + 5  # 16 MB: non-temporal stores, plus a scalar tail
    a, b = rand(n), rand(n)
    out = K.Array(n)
    K.ewise_add(dev(a), dev(b), out)
    np.testing.assert_array_equal(host(out, (n,)), a + b)


# -- strided views: compact, setitem, to_numpy -----------------------------------------


def view_of(base: np.ndarray, shape, strides, offset):
    return np.lib.stride_tricks.as_strided(base[offset:], shape=shape, strides=tuple(s * 4 for s in strides))


VIEWS = [
    ((4, 5), (5, 1), 0),  # compact
    ((5, 4), (1, 5), 0),  # transposed
    ((3, 70, 50), (1, 3, 210), 0),  # permuted, blocked transpose with edges
    ((64, 64), (1, 64), 0),
    ((33, 17), (1, 40), 3),  # transposed slice with offset
    ((6, 7), (0, 1), 2),  # broadcast rows
    ((6, 7), (1, 0), 2),  # broadcast columns
    ((2, 3, 4), (0, 0, 0), 5),  # scalar broadcast
    ((5, 3), (8, 2), 1),  # strided slice
    ((4, 4), (-4, 1), 12),  # flipped rows
    ((4, 4), (4, -1), 3),  # flipped columns
    ((), (), 7),  # a 0-d view
    ((3, 0, 2), (0, 1, 1), 0),  # empty
    ((1, 9, 1), (100, 1, 100), 0),  # size-1 dims with odd strides
    ((2, 3, 2, 3), (18, 1, 9, 3), 0),  # 4-d permutation
]


@pytest.mark.parametrize("shape,strides,offset", VIEWS)
def test_compact_matches_numpy_view(shape, strides, offset):
    base = np.arange(BASE, dtype=np.float32)
    buf = dev(base)
    out = K.Array(int(np.prod(shape)))
    K.compact(buf, out, shape, strides, offset)
    want = view_of(base, shape, strides, offset)
    np.testing.assert_array_equal(host(out, shape), want)
    np.testing.assert_array_equal(K.to_numpy(buf, shape, strides, offset), want)


def test_compact_of_large_transpose():
    x = rand(1000, 1500)
    out = K.Array(x.size)
    K.compact(dev(x), out, (1500, 1000), (1, 1500), 0)
    np.testing.assert_array_equal(host(out, (1500, 1000)), x.T)


@pytest.mark.parametrize("shape,strides,offset", [v for v in VIEWS if 0 not in v[1]])
def test_ewise_setitem_writes_only_the_view(shape, strides, offset):
    base = np.arange(BASE, dtype=np.float32)
    buf = dev(base)
    vals = rand(*shape) if shape else np.float32(rand(1)[0])
    K.ewise_setitem(dev(np.asarray(vals)), buf, shape, strides, offset)
    want = base.copy()
    view_of(want, shape, strides, offset)[...] = vals
    np.testing.assert_array_equal(host(buf, (BASE,)), want)


@pytest.mark.parametrize("shape,strides,offset", [v for v in VIEWS if 0 not in v[1]])
def test_scalar_setitem_writes_only_the_view(shape, strides, offset):
    base = np.arange(BASE, dtype=np.float32)
    buf = dev(base)
    K.scalar_setitem(int(np.prod(shape)), -3.5, buf, shape, strides, offset)
    want = base.copy()
    view_of(want, shape, strides, offset)[...] = -3.5
    np.testing.assert_array_equal(host(buf, (BASE,)), want)


def test_fill_and_from_numpy_roundtrip():
    out = K.Array(100_003)
    K.fill(out, 2.25)
    assert np.all(host(out, (100_003,)) == 2.25)
    x = rand(7, 9)
    np.testing.assert_array_equal(host(dev(x), x.shape), x)
    buf = K.Array(6)
    K.from_numpy(np.arange(6, dtype=np.float64).reshape(2, 3), buf)  # converted to float32
    np.testing.assert_array_equal(host(buf, (6,)), np.arange(6))


# -- reductions -------------------------------------------------------------------------


@pytest.mark.parametrize("rows,size", [(1, 1), (5, 3), (7, 16), (3, 1000), (1, 300_000), (2, 200_001), (4096, 33)])
def test_reduce_sum_and_max(rows, size):
    x = rand(rows, size)
    out = K.Array(rows)
    K.reduce_sum(dev(x), out, size)
    np.testing.assert_allclose(host(out, (rows,)), x.astype(np.float64).sum(axis=1), rtol=1e-5, atol=1e-4)
    K.reduce_max(dev(x), out, size)
    np.testing.assert_array_equal(host(out, (rows,)), x.max(axis=1))


def test_reduce_max_propagates_nan_and_handles_inf():
    x = np.array([[1, np.nan, 3] * 11, [-np.inf] * 33, [np.inf, 1, 2] * 11], np.float32)
    out = K.Array(3)
    K.reduce_max(dev(x), out, 33)
    np.testing.assert_array_equal(host(out, (3,)), np.max(x, axis=1))


VIEW_REDUCTIONS = [
    ((6, 4), (4, 1), 0, 1),  # last axis, contiguous
    ((4, 6), (1, 4), 0, 1),  # over a transposed axis
    ((300, 40), (1, 300), 0, 1),  # kept axis contiguous: column accumulation
    ((40, 300), (1, 40), 0, 1),
    ((5, 6, 7), (42, 7, 1), 0, 2),  # two trailing axes
    ((7, 5, 6), (1, 42, 7), 0, 2),  # permuted, generic path
    ((3, 4), (0, 1), 2, 1),  # broadcast kept axis
    ((3, 4), (1, 0), 2, 1),  # broadcast reduced axis
    ((3, 4), (4, 1), 0, 0),  # reduce nothing
    ((3, 4), (4, 1), 0, 2),  # reduce everything
    ((3, 0), (1, 1), 0, 1),  # empty reduction
]


@pytest.mark.parametrize("shape,strides,offset,rn", VIEW_REDUCTIONS)
def test_reduce_view_matches_numpy(shape, strides, offset, rn):
    base = rand(BASE)
    view = view_of(base, shape, strides, offset)
    axes = tuple(range(len(shape) - rn, len(shape)))
    kept = shape[: len(shape) - rn]
    out = K.Array(int(np.prod(kept)))
    K.reduce_sum_view(dev(base), out, shape, strides, offset, rn)
    np.testing.assert_allclose(host(out, kept), view.astype(np.float64).sum(axis=axes), rtol=1e-5, atol=1e-4)
    if 0 not in shape:
        K.reduce_max_view(dev(base), out, shape, strides, offset, rn)
        np.testing.assert_array_equal(host(out, kept), view.max(axis=axes) if rn else view)


@pytest.mark.parametrize("rows,size", [(3, 1), (4, 10), (5, 1000), (2, 17)])
def test_logsumexp_matches_stable_formula(rows, size):
    x = rand(rows, size, low=-30, high=30)
    x[0, :] = -np.inf  # an all -inf row gives -inf
    out = K.Array(rows)
    K.logsumexp(dev(x), out, size)
    with np.errstate(all="ignore"):
        m = x.max(axis=1, keepdims=True).astype(np.float64)
        want = (np.log(np.exp(x - np.where(np.isfinite(m), m, 0)).sum(axis=1, keepdims=True))
                + np.where(np.isfinite(m), m, 0)).ravel()
    want[0] = -np.inf
    np.testing.assert_allclose(host(out, (rows,)), want, rtol=1e-5)


# -- matmul family ------------------------------------------------------------------


@pytest.mark.parametrize("m,n,p", [(1, 1, 1), (3, 4, 5), (16, 16, 16), (14, 300, 32), (29, 257, 65),
                                   (100, 784, 100), (784, 100, 10), (30, 257, 33), (17, 769, 50),
                                   (513, 300, 1030), (2, 3000, 2), (70, 0, 5),
                                   (8192, 147, 16), (3000, 77, 3)])  # odd k: per-thread buffers stay aligned
def test_matmul_matches_numpy(m, n, p):
    a, b = rand(m, n), rand(n, p)
    out = K.Array(m * p)
    K.matmul(dev(a), dev(b), out, m, n, p)
    want = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(host(out, (m, p)), want, rtol=1e-4, atol=1e-4 * max(1, n) ** 0.5)


@pytest.mark.parametrize("rows", range(1, 15))
@pytest.mark.parametrize("cols", [5, 8, 9, 16, 20, 32, 50])
@pytest.mark.parametrize("n", [37, 600])
def test_matmul_every_edge_tile(rows, cols, n):
    # m = 28 + rows and p = 64 + cols reach each register block the kernel picks for the
    # last rows (1..14) and the last columns (8 lanes or fewer, one or two vectors, written
    # with a lane mask); n = 600 takes three k blocks, so edge tiles are also accumulated
    m, p = 28 + rows, 64 + cols
    a, b = rand(m, n), rand(n, p)
    out = K.Array(m * p)
    K.matmul(dev(a), dev(b), out, m, n, p)
    want = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(host(out, (m, p)), want, rtol=1e-4, atol=1e-4 * n ** 0.5)


@pytest.mark.parametrize("batch,m,n,p", [(3, 2, 3, 4), (5, 17, 33, 9), (2, 70, 80, 90), (1, 8, 8, 8)])
def test_batched_matmul_matches_numpy(batch, m, n, p):
    a, b = rand(batch, m, n), rand(batch, n, p)
    out = K.Array(batch * m * p)
    K.batched_matmul(dev(a), dev(b), out, batch, m, n, p)
    np.testing.assert_allclose(host(out, (batch, m, p)), a.astype(np.float64) @ b, rtol=1e-4, atol=1e-4)


def tiles(x: np.ndarray, t: int) -> np.ndarray:
    r, c = x.shape
    return x.reshape(r // t, t, c // t, t).transpose(0, 2, 1, 3).copy()


def test_matmul_tiled_course_layout():
    t = K.__tile_size__
    m, n, p = 2 * t, 3 * t, 4 * t
    a, b = rand(m, n), rand(n, p)
    out = K.Array(m * p)
    K.matmul_tiled(dev(tiles(a, t)), dev(tiles(b, t)), out, m, n, p)
    got = host(out, (m // t, p // t, t, t))
    np.testing.assert_allclose(got, tiles(a.astype(np.float64) @ b, t), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape_a,k,co,stride", [((2, 6, 6, 3), 3, 4, 1), ((3, 9, 8, 5), 3, 7, 2),
                                                 ((2, 10, 10, 3), 7, 16, 4), ((2, 5, 5, 6), 1, 3, 1),
                                                 ((128, 38, 38, 3), 7, 16, 4), ((64, 6, 6, 32), 3, 32, 1),
                                                 # windows of 360 floats: GEMM k blocks end mid kernel row
                                                 ((4, 10, 10, 40), 3, 24, 1),
                                                 # few outputs: the direct dot-product path
                                                 ((4, 12, 12, 16), 7, 3, 1), ((2, 9, 9, 5), 3, 1, 2),
                                                 ((2, 8, 8, 20), 3, 8, 1), ((3, 20, 20, 8), 16, 12, 1)])
def test_conv2d_nhwc_matches_direct_sum(shape_a, k, co, stride):
    a = rand(*shape_a)
    w = rand(k, k, shape_a[3], co)
    n, h, wd, _ = shape_a
    ho, wo = (h - k) // stride + 1, (wd - k) // stride + 1
    out = K.Array(n * ho * wo * co)
    K.conv2d_nhwc(dev(a), dev(w), out, shape_a, w.shape, stride)
    np.testing.assert_allclose(host(out, (n, ho, wo, co)), np_conv_nhwc(a, w, stride), rtol=1e-4, atol=1e-4)


# -- fused optimiser updates ----------------------------------------------------------


def test_sgd_update_formula_and_grad_untouched():
    n = 10_001
    w, g, u = rand(n), rand(n), rand(n)
    dw, dg, du = dev(w), dev(g), dev(u)
    K.sgd_update(dw, dg, du, n, 0.1, 0.9, 0.01)
    g2 = g + np.float32(0.01) * w
    u2 = np.float32(0.9) * u + np.float32(0.1) * g2
    np.testing.assert_allclose(host(du, (n,)), u2, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(host(dw, (n,)), w - np.float32(0.1) * u2, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(host(dg, (n,)), g)


def test_adam_update_formula_and_grad_untouched():
    n, t = 10_001, 3
    lr, b1, b2, eps, wd = 0.01, 0.9, 0.999, 1e-8, 0.001
    w, g, m, v = rand(n), rand(n), rand(n), np.abs(rand(n))
    dw, dg, dm, dv = dev(w), dev(g), dev(m), dev(v)
    K.adam_update(dw, dg, dm, dv, n, lr, b1, b2, eps, wd, t)
    w64, g64 = w.astype(np.float64), g.astype(np.float64) + wd * w
    m2 = b1 * m + (1 - b1) * g64
    v2 = b2 * v + (1 - b2) * g64 ** 2
    w2 = w64 - lr * (m2 / (1 - b1 ** t)) / (np.sqrt(v2 / (1 - b2 ** t)) + eps)
    np.testing.assert_allclose(host(dm, (n,)), m2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(host(dv, (n,)), v2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(host(dw, (n,)), w2, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(host(dg, (n,)), g)


# -- threads: determinism and the pool ------------------------------------------------


def test_results_do_not_depend_on_the_thread_count():
    x = rand(3, 400_000)
    a, b = rand(300, 500), rand(500, 200)
    results = []
    before = K.get_num_threads()
    try:
        for nt in (1, 2, 3):
            K.set_num_threads(nt)
            s = K.Array(3)
            K.reduce_sum(dev(x), s, 400_000)
            c = K.Array(300 * 200)
            K.matmul(dev(a), dev(b), c, 300, 500, 200)
            results.append((host(s, (3,)), host(c, (300, 200))))
    finally:
        K.set_num_threads(before)
    for s, c in results[1:]:
        np.testing.assert_array_equal(s, results[0][0])
        np.testing.assert_array_equal(c, results[0][1])


def test_training_shapes_do_not_depend_on_the_thread_count():
    # the MLP training step's kernels: GEMMs with edge tiles, a fused Adam update with
    # a SIMD tail, a transposed compact
    n = 78_500
    a, b = rand(100, 784), rand(784, 100)
    w, g, m, v = rand(n), rand(n), rand(n), np.abs(rand(n))
    results = []
    before = K.get_num_threads()
    try:
        for nt in (1, 2, 3):
            K.set_num_threads(nt)
            c = K.Array(100 * 100)
            K.matmul(dev(a), dev(b), c, 100, 784, 100)
            dw, dm, dv = dev(w), dev(m), dev(v)
            K.adam_update(dw, dev(g), dm, dv, n, 1e-3, 0.9, 0.999, 1e-8, 1e-3, 7)
            t = K.Array(784 * 100)
            K.compact(dev(a), t, (784, 100), (1, 784), 0)
            results.append([host(c, (100, 100)), host(dw, (n,)), host(dm, (n,)), host(dv, (n,)), host(t, (784, 100))])
    finally:
        K.set_num_threads(before)
    np.testing.assert_array_equal(results[0][4], a.T)
    for other in results[1:]:
        for got, want in zip(other, results[0], strict=True):
            np.testing.assert_array_equal(got, want)


def test_kernels_work_in_a_forked_child_after_threads_ran():
    import multiprocessing as mp

    a = rand(256, 256)
    out = K.Array(a.size)
    K.matmul(dev(a), dev(a), out, 256, 256, 256)  # the pool has run in this process
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(_child_matmul, (a,)).get(timeout=60)
    np.testing.assert_allclose(got, a.astype(np.float64) @ a, rtol=1e-4, atol=1e-3)


def _child_matmul(a):
    out = K.Array(a.size)
    K.matmul(dev(a), dev(a), out, *a.shape, a.shape[1])
    return host(out, a.shape)


# -- robustness: bad arguments raise before memory is touched -------------------------


def test_bad_sizes_raise_value_error():
    a, b, small = K.Array(8), K.Array(8), K.Array(4)
    with pytest.raises(ValueError, match="ewise_add"):
        K.ewise_add(a, small, b)
    with pytest.raises(ValueError, match="matmul"):
        K.matmul(a, b, b, 2, 4, 2)  # out needs 2 * 2 elements
    with pytest.raises(ValueError, match="reduce_sum"):
        K.reduce_sum(a, small, 3)
    with pytest.raises(ValueError, match="from_numpy"):
        K.from_numpy(np.zeros(5, np.float32), a)
    with pytest.raises(ValueError, match="dimensions must be >= 0"):
        K.matmul(a, b, small, -2, -4, 2)
    with pytest.raises(ValueError):
        K.Array(-1)
    with pytest.raises(ValueError, match="float32"):
        K.Array(4, "float64")


@pytest.mark.parametrize("shape,strides,offset", [((3, 3), (3, 1), 0), ((2, 2), (4, 1), 3), ((2,), (-1,), 0),
                                                  ((2, 2), (1, 2), 6), ((2,), (2**62, ), 0), ((2, 2), (1,), 0)])
def test_out_of_bounds_views_are_rejected(shape, strides, offset):
    buf, out = K.Array(8), K.Array(16)
    with pytest.raises(ValueError, match="view"):
        K.compact(buf, K.Array(int(np.prod(shape))), shape, strides, offset)
    with pytest.raises(ValueError, match="view"):
        K.to_numpy(buf, shape, strides, offset)
    with pytest.raises(ValueError):
        K.scalar_setitem(int(np.prod(shape)), 1.0, buf, shape, strides, offset)
    assert out.size == 16


def test_huge_allocation_is_a_memory_error():
    with pytest.raises(MemoryError):
        K.Array(1 << 45)
