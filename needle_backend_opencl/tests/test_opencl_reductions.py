"""reduce_sum/max (serial and work-group-tree shapes), their strided variants, logsumexp."""

from __future__ import annotations

import numpy as np
import pytest

SIZES = [1, 7, 127, 128, 1000, 4099]  # below and above the tree threshold (2 * 64)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("op", ["sum", "max"])
def test_reduce_rows(kernels, host, rng, size, op):
    rows = 5
    a = rng.standard_normal((rows, size)).astype(np.float32)
    out = host.empty(rows)
    kernels[f"reduce_{op}"](host.put(a), out, size)
    expected = a.sum(axis=1, dtype=np.float64) if op == "sum" else a.max(axis=1)
    np.testing.assert_allclose(host.get(out, (rows,)), expected, rtol=1e-5, atol=1e-5 * np.sqrt(size))


def test_reduce_max_propagates_nan_and_handles_inf(kernels, host):
    a = np.array([[1.0, np.nan, 3.0], [-np.inf, -np.inf, -np.inf], [np.inf, 0.0, 1.0]], np.float32)
    out = host.empty(3)
    kernels["reduce_max"](host.put(a), out, 3)
    np.testing.assert_array_equal(host.get(out, (3,)), a.max(axis=1))


def test_reduce_of_empty_rows_is_the_identity(kernels, host):
    out = host.empty(2)
    kernels["reduce_sum"](host.empty(0), out, 0)
    np.testing.assert_array_equal(host.get(out, (2,)), [0.0, 0.0])


@pytest.mark.parametrize("op", ["sum", "max"])
@pytest.mark.parametrize("axes", [(1,), (0,), (0, 2), (2,), (1, 2)])
def test_reduce_view_over_permuted_axes(kernels, host, rng, op, axes):
    a = rng.standard_normal((6, 50, 9)).astype(np.float32)
    kept = [d for d in range(3) if d not in axes]
    perm = kept + list(axes)  # reduced axes last, as the ABI expects
    view = a.transpose(perm)
    shape, strides = view.shape, tuple(s // 4 for s in view.strides)
    rows = int(np.prod([a.shape[d] for d in kept]))
    out = host.empty(rows)
    kernels[f"reduce_{op}_view"](host.put(a), out, shape, strides, 0, len(axes))
    expected = getattr(a, op)(axis=axes)
    np.testing.assert_allclose(host.get(out, expected.shape), expected, rtol=1e-5, atol=1e-4)


def test_reduce_view_with_offset_and_long_rows(kernels, host, rng):
    base = rng.standard_normal(3 * 500 + 11).astype(np.float32)
    out = host.empty(3)
    kernels["reduce_sum_view"](host.put(base), out, (3, 500), (500, 1), 11, 1)
    np.testing.assert_allclose(host.get(out, (3,)), base[11:].reshape(3, 500).sum(1), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("size", [1, 10, 300])
def test_logsumexp(kernels, host, rng, size):
    a = (rng.standard_normal((4, size)) * 30).astype(np.float32)
    a[3] = -np.inf  # an all -inf row gives -inf
    out = host.empty(4)
    kernels["logsumexp"](host.put(a), out, size)
    m = a[:3].max(axis=1, keepdims=True).astype(np.float64)
    expected = m[:, 0] + np.log(np.exp(a[:3] - m).sum(axis=1))
    got = host.get(out, (4,))
    np.testing.assert_allclose(got[:3], expected, rtol=1e-5, atol=1e-5)
    assert got[3] == -np.inf


def test_logsumexp_of_a_row_holding_plus_inf_is_plus_inf(kernels, host):
    a = np.array([[1.0, np.inf, 3.0], [np.inf, np.inf, -np.inf], [np.nan, np.inf, 0.0]], np.float32)
    big = np.zeros((2, 500), np.float32)
    big[:, 321] = np.inf  # the work-group-tree shape too
    out, out_big = host.empty(3), host.empty(2)
    kernels["logsumexp"](host.put(a), out, 3)
    kernels["logsumexp"](host.put(big), out_big, 500)
    got = host.get(out, (3,))
    assert got[0] == np.inf and got[1] == np.inf and np.isnan(got[2])
    np.testing.assert_array_equal(host.get(out_big, (2,)), [np.inf, np.inf])


@pytest.mark.parametrize("layout", ["contiguous", "view"])
@pytest.mark.parametrize("rows", [1, 2])  # one row: the serial shape would do; both are compensated
def test_reduce_sum_of_150k_elements_is_accurate_to_a_pairwise_sum(kernels, host, rows, layout):
    """A float32 pairwise sum errs by at most eps * log2(n) * sum|x|; 64 running sums of
    2,344 elements each (the old tree) erred by 1.4e-5 relative on this data: values near
    1e4 make each running sum large enough that every addition rounds off most of x."""
    rng = np.random.default_rng(7)
    a = (rng.random((rows, 150_000)) + 1e4).astype(np.float32)
    out = host.empty(rows)
    if layout == "contiguous":
        kernels["reduce_sum"](host.put(a), out, a.shape[1])
    else:
        kernels["reduce_sum_view"](host.put(a), out, a.shape, (a.shape[1], 1), 0, 1)
    exact = a.astype(np.float64).sum(axis=1)
    bound = np.finfo(np.float32).eps * np.log2(a.shape[1]) * np.abs(a).sum(axis=1, dtype=np.float64)
    assert np.all(np.abs(host.get(out, (rows,)) - exact) <= bound)
    assert np.all(np.abs(host.get(out, (rows,)) - exact) / exact <= 1e-6)


def test_reduce_sum_with_inf_and_nan_stays_ieee(kernels, host):
    a = np.ones((3, 300), np.float32)
    a[0, 7], a[1, 8], a[1, 9], a[2, 10] = np.inf, np.inf, -np.inf, np.nan
    out = host.empty(3)
    kernels["reduce_sum"](host.put(a), out, 300)
    got = host.get(out, (3,))
    assert got[0] == np.inf and np.isnan(got[1]) and np.isnan(got[2])


@pytest.mark.parametrize("op", ["max", "sum"])
def test_reductions_of_broadcast_views_past_2_31_elements(kernels, host, op):
    """nd.array([[-1e30], [-2e30]]).broadcast_to((2, 1_200_000_000)).max(axis=1): the
    second row started past element 2^31 and read wrong memory with 32-bit indices."""
    base = np.array([-1e30, -2e30], np.float32) if op == "max" else np.array([1.5, -0.25], np.float32)
    out = host.empty(2)
    kernels[f"reduce_{op}_view"](host.put(base), out, (2, 1_200_000_000), (1, 0), 0, 1)
    expected = base if op == "max" else base.astype(np.float64) * 1_200_000_000
    np.testing.assert_allclose(host.get(out, (2,)), expected, rtol=1e-6)


@pytest.mark.slow
def test_reduce_view_of_an_overlapping_window_past_2_31_elements(kernels, host):
    """No broadcast axis to drop: the kernel itself walks 2.4e9 elements with 64-bit math
    (rows r = 0, 1 of a sliding window, like as_strided makes for im2col)."""
    base = np.arange(70_001, dtype=np.float32)
    out = host.empty(2)
    kernels["reduce_max_view"](host.put(base), out, (2, 40_000, 30_000), (1, 1, 1), 0, 2)
    np.testing.assert_array_equal(host.get(out, (2,)), [69_998.0, 69_999.0])


@pytest.mark.parametrize("op", ["sum", "max"])
@pytest.mark.parametrize("layout", ["contiguous", "view"])
def test_few_long_rows_are_split_over_work_groups(runtime, kernels, host, rng, op, layout):
    """One row of 100,000: several work-groups, then a join (checked by the kernels queued)."""
    size = 100_003  # chunks of unequal length, the last one short
    a = rng.standard_normal(size).astype(np.float32)
    a[size - 5] = 50.0  # the max in the last chunk
    out = host.empty(1)
    runtime.finish()
    if layout == "contiguous":
        kernels[f"reduce_{op}"](host.put(a), out, size)
    else:
        kernels[f"reduce_{op}_view"](host.put(a), out, (1, size), (size, 1), 0, 1)
    queued = [name for name, _ in runtime.pending]
    suffix = "" if layout == "contiguous" else "_view"
    assert f"reduce_{op}{suffix}_split" in queued and f"reduce_{op}{suffix}_join" in queued
    expected = a.astype(np.float64).sum() if op == "sum" else 50.0
    np.testing.assert_allclose(host.get(out, (1,)), [expected], rtol=1e-6, atol=1e-4)


def test_split_reductions_keep_nan_and_inf(kernels, host):
    a = np.zeros((2, 60_000), np.float32)
    a[0, 59_000], a[1, 100] = np.nan, np.inf
    out_max, out_sum = host.empty(2), host.empty(2)
    kernels["reduce_max"](host.put(a), out_max, 60_000)
    kernels["reduce_sum"](host.put(a), out_sum, 60_000)
    got_max, got_sum = host.get(out_max, (2,)), host.get(out_sum, (2,))
    assert np.isnan(got_max[0]) and got_max[1] == np.inf
    assert np.isnan(got_sum[0]) and got_sum[1] == np.inf


def test_reductions_render_the_abi_rows():
    """Identity and combine step come from needle_core.kernels.REDUCTIONS, not a copy."""
    from needle_backend_opencl import render
    from needle_core.kernels import REDUCTIONS_BY_NAME

    source = render.render_reductions()
    row = REDUCTIONS_BY_NAME["reduce_max"]
    assert f"return {row.combine.replace('acc', 's')};" in source
    assert row.c_identity in source
    assert f"(float2)({REDUCTIONS_BY_NAME['reduce_sum'].c_identity}, 0.0f)" in source
