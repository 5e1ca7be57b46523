"""compact / ewise_setitem / scalar_setitem / to_numpy on strided views, against NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from needle_backend_opencl import views


def _random_view(rng, base_size):
    """A random strided view (shape, strides, offset) that fits a buffer of base_size."""
    ndim = int(rng.integers(1, 6))
    shape = tuple(int(s) for s in rng.integers(1, 5, size=ndim))
    strides = [int(s) for s in rng.integers(0, 4, size=ndim)]  # 0: broadcast axes
    reach = sum((n - 1) * s for n, s in zip(shape, strides, strict=True))
    offset = int(rng.integers(0, max(1, base_size - reach)))
    return shape, tuple(strides), offset


def _numpy_view(base, shape, strides, offset):
    return np.lib.stride_tricks.as_strided(base[offset:], shape, tuple(4 * s for s in strides))


@pytest.mark.parametrize("seed", range(20))
def test_compact_random_views(kernels, host, seed):
    rng = np.random.default_rng(seed)
    base = rng.standard_normal(400).astype(np.float32)
    shape, strides, offset = _random_view(rng, base.size)
    out = host.empty(int(np.prod(shape)))
    kernels["compact"](host.put(base), out, shape, strides, offset)
    np.testing.assert_array_equal(host.get(out, shape), _numpy_view(base, shape, strides, offset))


@pytest.mark.parametrize("seed", range(10))
def test_to_numpy_random_views(kernels, host, seed):
    rng = np.random.default_rng(100 + seed)
    base = rng.standard_normal(400).astype(np.float32)
    shape, strides, offset = _random_view(rng, base.size)
    got = kernels["to_numpy"](host.put(base), shape, strides, offset)
    np.testing.assert_array_equal(got, _numpy_view(base, shape, strides, offset))
    assert got.flags.owndata or got.base is not None  # a real array, safe after the buffer dies


def test_compact_transpose_and_contiguous_slice(kernels, host, rng):
    a = rng.standard_normal((37, 53)).astype(np.float32)
    buf = host.put(a)
    out = host.empty(a.size)
    kernels["compact"](buf, out, (53, 37), (1, 53), 0)
    np.testing.assert_array_equal(host.get(out, (53, 37)), a.T)
    kernels["compact"](buf, out, (5, 53), (53, 1), 53 * 7)  # rows 7..11: one device copy
    np.testing.assert_array_equal(host.get(out, (5, 53)), a[7:12])


@pytest.mark.parametrize("seed", range(10))
def test_ewise_setitem_writes_only_the_view(kernels, host, seed):
    rng = np.random.default_rng(200 + seed)
    base = rng.standard_normal(300).astype(np.float32)
    ndim = int(rng.integers(1, 4))
    shape = tuple(int(s) for s in rng.integers(1, 5, size=ndim))
    # distinct element addresses (setitem through a broadcast view is ill-defined)
    strides, step = [], int(rng.integers(1, 3))
    for n in reversed(shape):
        strides.insert(0, step)
        step *= n + int(rng.integers(0, 2))
    offset = int(rng.integers(0, 20))
    values = rng.standard_normal(int(np.prod(shape))).astype(np.float32)
    buf = host.put(base)
    kernels["ewise_setitem"](host.put(values), buf, shape, tuple(strides), offset)
    expected = base.copy()
    _numpy_view(expected, shape, strides, offset)[...] = values.reshape(shape)
    np.testing.assert_array_equal(host.get(buf, (300,)), expected)


def test_scalar_setitem(kernels, host, rng):
    base = rng.standard_normal((6, 8)).astype(np.float32)
    buf = host.put(base)
    kernels["scalar_setitem"](6, 7.0, buf, (3, 2), (16, 3), 1)  # base[::2, 1:7:3]
    expected = base.copy()
    expected[::2, 1:7:3] = 7.0
    np.testing.assert_array_equal(host.get(buf, (6, 8)), expected)


def test_views_that_leave_the_buffer_are_refused(kernels, host):
    buf = host.put(np.zeros(10))
    with pytest.raises(ValueError, match="reaches element 10"):
        kernels["compact"](buf, host.empty(4), (2, 2), (9, 1), 0)
    with pytest.raises(ValueError, match="non-negative"):
        kernels["compact"](buf, host.empty(4), (4,), (-1,), 3)


def test_from_numpy_checks_the_size(kernels, host):
    with pytest.raises(ValueError, match="expected 5 elements"):
        kernels["from_numpy"](np.zeros(4, np.float32), host.empty(5))


def test_simplify_merges_axes_that_step_as_one():
    assert views.simplify((2, 3, 4), (12, 4, 1)) == ([24], [1])
    assert views.simplify((3, 1, 4), (1, 99, 3)) == ([3, 4], [1, 3])
    assert views.simplify((1, 1), (5, 7)) == ([1], [1])


def test_empty_views_are_no_ops(kernels, host):
    kernels["compact"](host.put(np.zeros(3)), host.empty(0), (0, 3), (3, 1), 0)
    assert kernels["to_numpy"](host.empty(0), (0, 4), (4, 1), 0).shape == (0, 4)


@pytest.fixture(params=[1, 3, 64], ids=["chunk1-gpu", "chunk3", "chunk64-cpu"])
def view_chunk(runtime, request):
    """Elements per work-item of the view kernels: 1 as on GPUs, 64 as on CPUs, and an
    odd size so that rows end inside a piece."""
    saved = runtime.view_chunk
    runtime.view_chunk = request.param
    yield request.param
    runtime.view_chunk = saved


@pytest.mark.parametrize("seed", range(6))
def test_view_kernels_for_every_piece_size(kernels, host, view_chunk, seed):
    rng = np.random.default_rng(500 + seed)
    base = rng.standard_normal(3000).astype(np.float32)
    shape, strides = (3, 5, 130), (1000, 0, 7)  # a broadcast axis and a long strided last axis
    offset = int(rng.integers(0, 50))
    n = int(np.prod(shape))
    expected = _numpy_view(base, shape, strides, offset)
    out = host.empty(n)
    kernels["compact"](host.put(base), out, shape, strides, offset)
    np.testing.assert_array_equal(host.get(out, shape), expected)

    other = rng.standard_normal(n).astype(np.float32).reshape(shape)
    result = host.empty(n)
    kernels["ewise_strided"](
        "ewise_add", host.put(base), strides, offset, host.put(other), (650, 130, 1), 0, result, shape
    )
    np.testing.assert_array_equal(host.get(result, shape), expected + other)

    target = np.zeros(3000, np.float32)
    values = rng.standard_normal(3 * 130).astype(np.float32)
    buf = host.put(target)
    kernels["ewise_setitem"](host.put(values), buf, (3, 130), (1000, 7), offset)
    _numpy_view(target, (3, 130), (1000, 7), offset)[...] = values.reshape(3, 130)
    kernels["scalar_setitem"](3 * 20, -1.0, buf, (3, 20), (1000, 1), offset)
    _numpy_view(target, (3, 20), (1000, 1), offset)[...] = -1.0
    np.testing.assert_array_equal(host.get(buf, (3000,)), target)


def test_a_view_geometry_is_planned_once_then_reused(kernels, host, monkeypatch):
    """Training repeats shapes every step: validation, axis merging and view packing run
    once per geometry (counted by the packs), never for a geometry seen before."""

    packed = []
    real_pack = views.pack
    monkeypatch.setattr(views, "pack", lambda *args: packed.append(args) or real_pack(*args))
    a, b = host.put(np.arange(12, dtype=np.float32)), host.put(np.arange(4, dtype=np.float32))
    out, sums = kernels["Array"](12), kernels["Array"](4)
    for _ in range(5):
        kernels["ewise_strided"]("ewise_add", a, (4, 1), 0, b, (0, 1), 0, out, (3, 4))
        kernels["compact"](a, out, (4, 3), (1, 4), 0)
        kernels["reduce_sum_view"](a, sums, (4, 3), (1, 4), 0, 1)
    assert len(packed) == 4  # two views of ewise_strided, one each for compact and the sum
    np.testing.assert_array_equal(host.get(sums, (4,)), np.arange(12, dtype=np.float32).reshape(3, 4).sum(0))
    kernels["compact"](a, out, (3, 3), (1, 4), 1)  # another offset: another plan
    assert len(packed) == 5
    np.testing.assert_array_equal(host.get(out, (9,)), np.arange(12, dtype=np.float32).reshape(3, 4)[:, 1:].T.ravel())
    kernels["compact"](a, out, [4, 3], [1, 4], 0)  # lists cannot be remembered, but work
    np.testing.assert_array_equal(host.get(out, (12,)), np.arange(12, dtype=np.float32).reshape(3, 4).T.ravel())


def test_a_bad_view_geometry_raises_every_time(kernels, host):
    a, out = host.put(np.zeros(6, np.float32)), kernels["Array"](6)
    for _ in range(2):  # errors are not remembered as plans
        with pytest.raises(ValueError, match="reaches element 8"):
            kernels["compact"](a, out, (2, 3), (1, 3), 1)
