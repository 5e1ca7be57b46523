"""Every row of the shared ELEMENTWISE table, rendered to OpenCL, against its NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
from needle_core.kernels import ELEMENTWISE

SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, np.inf, -np.inf, np.nan, 1e-30, -3.5, 88.0], dtype=np.float32)


def _operands(row, rng, n):
    a = rng.standard_normal(n).astype(np.float32) * 3
    if row.name in ("ewise_log", "ewise_sqrt", "scalar_power", "ewise_power"):
        a = np.abs(a) + np.float32(0.1)  # the real-valued domain; NaN cases are checked below
    special = n >= 2 * SPECIAL.size
    if special:
        a[: SPECIAL.size] = SPECIAL
    if row.arity == 1:
        return a, None
    if row.is_scalar:
        return a, 1.5
    b = rng.standard_normal(n).astype(np.float32)
    if special:
        b[: SPECIAL.size] = SPECIAL[::-1]
        b[SPECIAL.size : 2 * SPECIAL.size] = a[SPECIAL.size : 2 * SPECIAL.size]  # equal pairs for eq/ge
    return a, b


@pytest.mark.parametrize("row", ELEMENTWISE, ids=lambda r: r.name)
@pytest.mark.parametrize("n", [1, 255, 1000])
def test_elementwise_matches_numpy(kernels, host, rng, row, n):
    a, b = _operands(row, rng, n)
    out = host.empty(n)
    with np.errstate(all="ignore"):
        if row.arity == 1:
            kernels[row.name](host.put(a), out)
            expected = row.numpy(a, out=np.empty_like(a))
        elif row.is_scalar:
            kernels[row.name](host.put(a), b, out)
            expected = row.numpy(a, np.float32(b), out=np.empty_like(a))
        else:
            kernels[row.name](host.put(a), host.put(b), out)
            expected = row.numpy(a, b, out=np.empty_like(a))
    got = host.get(out, (n,))
    np.testing.assert_allclose(got, expected.astype(np.float32), rtol=1e-5, atol=1e-6, equal_nan=True)


def test_scalar_power_of_negative_base_is_nan_like_c(kernels, host):
    out = host.empty(2)
    kernels["scalar_power"](host.put(np.array([-2.0, 4.0])), 0.5, out)
    got = host.get(out, (2,))
    assert np.isnan(got[0]) and got[1] == pytest.approx(2.0)


def test_ewise_kernels_reject_short_operands(kernels, host):
    with pytest.raises(ValueError, match="exactly 8 elements, but a has 4"):
        kernels["ewise_add"](host.put(np.ones(4)), host.put(np.ones(8)), host.empty(8))


@pytest.mark.parametrize("name", ["ewise_add", "scalar_mul", "ewise_exp"])
def test_elementwise_kernels_reject_operands_larger_than_out(kernels, host, name):
    """docs/backends.md §1: compact operands are whole buffers of out's size (as cpu checks)."""
    big, out = host.put(np.ones(8)), host.empty(4)
    args = {"ewise_add": (big, host.put(np.ones(4))), "scalar_mul": (big, 2.0), "ewise_exp": (big,)}[name]
    with pytest.raises(ValueError, match="exactly 4 elements, but a has 8"):
        kernels[name](*args, out)


def test_tanh_of_infinities_and_large_values_is_exactly_one(kernels, host):
    x = np.array([np.inf, -np.inf, 9.5, -20.0, 0.5, np.nan], dtype=np.float32)
    out = host.empty(x.size)
    kernels["ewise_tanh"](host.put(x), out)
    got = host.get(out, x.shape)
    np.testing.assert_array_equal(got[:4], [1.0, -1.0, 1.0, -1.0])
    assert got[4] == pytest.approx(np.tanh(np.float32(0.5)), abs=1e-7) and np.isnan(got[5])


def test_fill(kernels, host):
    out = host.empty(1000)
    kernels["fill"](out, -2.5)
    np.testing.assert_array_equal(host.get(out, (1000,)), np.full(1000, -2.5, np.float32))
