"""ndl.init: every draw equals the documented NumPy formula for a seed (host float64,
cast once to the dtype), on every device; constants, one-hot, flags, devices."""

from __future__ import annotations

import math

import numpy as np
import pytest

import needle as ndl

init = ndl.init


def _same(tensor, expected, dtype="float32") -> None:
    assert tensor.dtype == dtype
    np.testing.assert_array_equal(tensor.numpy(), np.asarray(expected).astype(dtype))


@pytest.mark.parametrize(
    "draw, formula",
    [
        (lambda d: init.rand(3, 4, device=d), lambda: np.random.rand(3, 4)),
        (lambda d: init.rand(3, 4, low=-2.0, high=5.0, device=d), lambda: np.random.rand(3, 4) * 7.0 - 2.0),
        (lambda d: init.randn(2, 5, device=d), lambda: np.random.randn(2, 5)),
        (lambda d: init.randn(2, 5, mean=1.5, std=0.3, device=d), lambda: np.random.randn(2, 5) * 0.3 + 1.5),
        (lambda d: init.randb(4, 6, p=0.3, device=d), lambda: np.random.rand(4, 6) <= 0.3),
        (lambda d: init.randb(4, 6, p=0.3, device=d, dtype="bool"), lambda: np.random.rand(4, 6) <= 0.3),
        (
            lambda d: init.xavier_uniform(5, 7, gain=1.5, device=d),
            lambda: (lambda a: np.random.rand(5, 7) * (2 * a) - a)(1.5 * math.sqrt(6 / 12)),
        ),
        (
            lambda d: init.xavier_normal(5, 7, gain=0.5, device=d),
            lambda: np.random.randn(5, 7) * (0.5 * math.sqrt(2 / 12)),
        ),
        (
            lambda d: init.kaiming_uniform(6, 3, device=d),
            lambda: (lambda b: np.random.rand(6, 3) * (2 * b) - b)(math.sqrt(2) * math.sqrt(3 / 6)),
        ),
        (
            lambda d: init.kaiming_uniform(18, 8, shape=(3, 3, 2, 4), device=d),
            lambda: (lambda b: np.random.rand(3, 3, 2, 4) * (2 * b) - b)(math.sqrt(2) * math.sqrt(3 / 18)),
        ),
        (lambda d: init.kaiming_normal(6, 3, device=d), lambda: np.random.randn(6, 3) * (math.sqrt(2) / math.sqrt(6))),
    ],
    ids=[
        "rand",
        "rand_range",
        "randn",
        "randn_mean_std",
        "randb",
        "randb_bool",
        "xavier_uniform",
        "xavier_normal",
        "kaiming_uniform",
        "kaiming_uniform_shape",
        "kaiming_normal",
    ],
)
def test_draws_match_numpy_formula(needle_device, draw, formula) -> None:
    np.random.seed(7)
    got = draw(needle_device)
    np.random.seed(7)
    expected = formula()
    assert got.device == needle_device and not got.requires_grad
    _same(got, expected)


def test_draw_order_is_the_courses(needle_device) -> None:
    np.random.seed(3)
    first, second = init.rand(2, 3, device=needle_device), init.randn(4, device=needle_device)
    np.random.seed(3)
    _same(first, np.random.rand(2, 3))
    _same(second, np.random.randn(4))


def test_float64_draws(needle_device) -> None:
    if "float64" not in needle_device.dtypes:
        with pytest.raises(ValueError, match="float64"):
            init.rand(2, device=needle_device, dtype="float64")
        return
    np.random.seed(1)
    got = init.randn(3, 2, std=2.0, device=needle_device, dtype="float64")
    np.random.seed(1)
    _same(got, np.random.randn(3, 2) * 2.0, "float64")


def test_constants(needle_device) -> None:
    _same(init.constant(2, 3, c=-1.25, device=needle_device), np.full((2, 3), -1.25))
    _same(init.ones(3, device=needle_device), np.ones(3))
    _same(init.zeros(2, 2, device=needle_device), np.zeros((2, 2)))
    assert ndl.ones is init.ones and ndl.zeros is init.zeros
    assert ndl.ones_like is init.ones_like and ndl.zeros_like is init.zeros_like
    t = init.ones(2, 3, device=needle_device, requires_grad=True)
    assert t.requires_grad
    _same(init.zeros_like(t), np.zeros((2, 3)))
    _same(init.ones_like(t, requires_grad=True), np.ones((2, 3)))
    assert init.zeros_like(t).device == needle_device and not init.zeros_like(t).requires_grad


def test_one_hot(needle_device) -> None:
    labels = np.array([2, 0, 3, 3])
    _same(init.one_hot(5, labels, device=needle_device), np.eye(5)[labels])
    as_floats = ndl.Tensor(labels.astype(np.float32), device=needle_device)
    _same(init.one_hot(5, as_floats, device=needle_device), np.eye(5)[labels])
    nested = np.array([[1, 2], [0, 4]])  # any index shape
    _same(init.one_hot(5, nested, device=needle_device), np.eye(5)[nested])
    # the course's device.one_hot is eye(n)[i]: negative indices wrap like eye's rows ...
    wrapping = np.array([[1, -1], [0, 4]])
    _same(needle_device.one_hot(5, wrapping), np.eye(5)[wrapping])
    # ... while init.one_hot takes class labels: a negative one is a mistake, named
    with pytest.raises(ValueError, match=r"label -1 is outside \[0, 5\)"):
        init.one_hot(5, wrapping, device=needle_device)


def test_one_hot_of_a_large_vocabulary_builds_only_its_rows(needle_device) -> None:
    # eye(n) would be n * n floats (4 TB here): a language model's vocabulary must not pay for it
    rows = init.one_hot(1_000_000, [3, 999_999], device=needle_device).numpy()
    assert rows.shape == (2, 1_000_000) and rows.sum() == 2 and rows[0, 3] == rows[1, 999_999] == 1
    with pytest.raises(ValueError, match=r"label 4 is outside \[0, 4\)"):
        init.one_hot(4, [4], device=needle_device)
    with pytest.raises(IndexError, match="out of bounds"):
        needle_device.one_hot(4, np.array([4]))


def test_default_device_and_dtype_spellings(needle_device) -> None:
    assert init.rand(2).device == ndl.default_device()
    assert init.rand(2, device=needle_device.canonical).device == needle_device
    for spelled in ("float32", np.float32, np.dtype("float32")):
        assert init.zeros(2, dtype=spelled).dtype == "float32"
