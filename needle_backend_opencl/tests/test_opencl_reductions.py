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
