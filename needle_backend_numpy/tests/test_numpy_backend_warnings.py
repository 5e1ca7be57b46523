"""The numpy backend gives NaN/inf silently, as the compiled backends (and C) do.

NumPy warns on invalid values, division by zero and overflow; a user running with
``-W error`` must not get an exception on cpu_numpy only. Each result is compared
with NumPy's own value, computed here with NumPy's warnings ignored.
"""

from __future__ import annotations

import warnings

import needle as ndl
import numpy as np
import pytest
from needle import backend_ndarray as nd

from needle_core.kernels import ELEMENTWISE

F32 = np.float32


@pytest.fixture
def dev():
    return ndl.cpu_numpy()


@pytest.fixture(autouse=True)
def warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _expect(fn, *args):
    with np.errstate(all="ignore"):
        return fn(*args)


def _check(got, expected):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected, dtype=F32))


def test_the_four_classic_cases_on_ndarrays(dev):
    _check(nd.array([-1.0, 0.0], device=dev).log(), _expect(np.log, np.array([-1.0, 0.0], F32)))
    _check(nd.array([-2.0], device=dev) ** 0.5, _expect(np.power, np.array([-2.0], F32), F32(0.5)))
    _check(1.0 / nd.array([0.0, -0.0], device=dev), _expect(np.divide, F32(1.0), np.array([0.0, -0.0], F32)))
    _check(nd.array([1000.0], device=dev).exp(), _expect(np.exp, np.array([1000.0], F32)))


def test_the_four_classic_cases_on_tensors(dev):
    assert np.isnan(ndl.log(ndl.Tensor([-1.0], device=dev, dtype="float32")).numpy()).all()
    assert np.isnan((ndl.Tensor([-2.0], device=dev, dtype="float32") ** 0.5).numpy()).all()
    assert np.isposinf((1 / ndl.Tensor([0.0], device=dev, dtype="float32")).numpy()).all()
    assert np.isposinf(ndl.exp(ndl.Tensor([1000.0], device=dev, dtype="float32")).numpy()).all()


def test_overflow_and_invalid_in_arithmetic_and_reductions(dev):
    big = np.array([3e38, -3e38, np.inf, 0.0], F32)
    a = nd.array(big, device=dev)
    b = nd.array(np.array([3e38, -3e38, -np.inf, np.inf], F32), device=dev)
    _check(a + b, _expect(np.add, big, b.numpy()))
    _check(a * b, _expect(np.multiply, big, b.numpy()))
    _check(a / b, _expect(np.divide, big, b.numpy()))
    _check(a * 10.0, _expect(np.multiply, big, F32(10.0)))
    _check(a.sum(), _expect(np.sum, big))
    square = nd.array(np.full((2, 2), 3e38, F32), device=dev)
    _check(square @ square, _expect(np.matmul, square.numpy(), square.numpy()))
    _check(nd.full((2,), 1e300, device=dev), np.full(2, np.inf, F32))  # a double out of float32 range
    _check(nd.sqrt(nd.array([-1.0], device=dev)), np.array([np.nan], F32))
    _check(nd.sigmoid(nd.array([-1000.0], device=dev)), np.array([0.0], F32))


def test_every_elementwise_row_is_silent_on_extreme_inputs(dev):
    # every kernel of the table, muted or bare, on the values that raise FP flags
    edge = np.array([-np.inf, -3e38, -1.0, -0.0, 0.0, 1e-45, 1.0, 3e38, np.inf, np.nan], F32)
    other = edge[::-1].copy()
    a, b = dev.Array(edge.size), dev.Array(edge.size)
    dev.from_numpy(edge, a)
    dev.from_numpy(other, b)
    out = dev.Array(edge.size)
    for row in ELEMENTWISE:
        kernel = getattr(dev, row.name)
        if kernel is None:
            continue
        if row.arity == 1:
            kernel(a, out)
            expected = _expect(row.numpy, edge)
        elif row.is_scalar:
            kernel(a, -0.5, out)
            expected = _expect(row.numpy, edge, -0.5)
        else:
            kernel(a, b, out)
            expected = _expect(row.numpy, edge, other)
        got = dev.to_numpy(out, (edge.size,), (1,), 0)
        np.testing.assert_array_equal(got, np.asarray(expected, dtype=F32), err_msg=row.name)


def test_numpy_error_state_is_restored_after_kernels(dev):
    before = np.geterr()
    nd.array([-1.0], device=dev).log()
    with pytest.raises(ValueError):  # a kernel that raises still restores it
        dev.matmul(dev.Array(2), dev.Array(2), dev.Array(2), 3, 3, 3)
    assert np.geterr() == before
    with pytest.warns(RuntimeWarning):  # NumPy outside the backend still warns as the user set it
        np.log(np.array([-1.0]))
