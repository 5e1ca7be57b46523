"""The cpu backend's ``ewise_strided`` kernel at sizes and layouts the conformance
suite does not reach: SIMD bodies of broadcast/contiguous rows, one long split row,
thread splits over rows, odometer carries, and the argument checks."""

from __future__ import annotations

import numpy as np
import pytest

from cpu_kernel_support import K, dev
from needle_core.kernels import ELEMENTWISE

RNG = np.random.default_rng(1)
BINARY = [r for r in ELEMENTWISE if r.arity == 2 and not r.is_scalar and r.name != "ewise_power"]


def elem_strides(x: np.ndarray) -> tuple[int, ...]:
    return tuple(s // 4 for s in x.strides)


def run(name: str, a: np.ndarray, b: np.ndarray, base_a: np.ndarray, base_b: np.ndarray, off_a=0, off_b=0):
    """ewise_strided on the views ``a`` of ``base_a`` and ``b`` of ``base_b`` (offsets in elements)."""
    out = K.Array(a.size)
    K.ewise_strided(name, dev(base_a), elem_strides(a), off_a, dev(base_b), elem_strides(b), off_b, out, a.shape)
    return K.to_numpy(out, a.shape, elem_strides(np.empty(a.shape, np.float32)), 0)


def compact_kernel(name: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = K.Array(a.size)
    getattr(K, name)(dev(a), dev(b), out)
    return K.to_numpy(out, (a.size,), (1,), 0).reshape(a.shape)


def check(name: str, a, b, base_a, base_b, off_a=0, off_b=0):
    got = run(name, a, b, base_a, base_b, off_a, off_b)
    row = next(r for r in ELEMENTWISE if r.name == name)
    ref = np.empty(a.shape, np.float32)
    row.numpy(a, b, out=ref)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(got, compact_kernel(name, a, b))  # bit-identical to compact + ewise_*


@pytest.mark.parametrize("name", [r.name for r in BINARY])
@pytest.mark.parametrize("rows,cols", [(1, 70_001), (3, 17), (300, 257), (2000, 33), (5, 1)])
def test_bias_broadcast_rows(name, rows, cols):
    # the Linear layer's `x + bias.broadcast_to(...)`: a stride-0 row axis, both orders
    x = RNG.uniform(-2, 2, (rows, cols)).astype(np.float32)
    bias = RNG.uniform(0.5, 2, (1, cols)).astype(np.float32)
    bb = np.broadcast_to(bias, (rows, cols))
    check(name, x, bb, x, bias)
    check(name, bb, x, bias, x)


@pytest.mark.parametrize("name", ["ewise_mul", "ewise_div"])
@pytest.mark.parametrize("shape", [(4, 9000), (50_000, 3), (7, 5, 700)])
def test_column_broadcast_and_permuted(name, shape):
    # a stride-0 last axis (a reduced grad broadcast back) and a transposed operand
    x = RNG.uniform(-2, 2, shape).astype(np.float32)
    col = RNG.uniform(0.5, 2, shape[:-1] + (1,)).astype(np.float32)
    check(name, x, np.broadcast_to(col, shape), x, col)
    t = RNG.uniform(0.5, 2, shape[::-1]).astype(np.float32)
    check(name, x, t.T, x, t)


def test_offset_views_and_odometer_carries():
    base = RNG.uniform(-2, 2, 6 * 7 * 40).astype(np.float32)
    full = base.reshape(6, 7, 40)
    a = full[1:5, 2:7:2, 3:37]  # offset, stepped middle axis, contiguous last axis
    b = full[2:6, 0:3, 1:35]
    off_a = 1 * 280 + 2 * 40 + 3
    off_b = 2 * 280 + 1
    check("ewise_add", a, b, base, base, off_a, off_b)


def test_results_do_not_depend_on_the_thread_count():
    x = RNG.uniform(-2, 2, (600, 300)).astype(np.float32)
    bias = RNG.uniform(-2, 2, (1, 300)).astype(np.float32)
    before = K.get_num_threads()
    try:
        results = []
        for nt in (1, 2, 3):
            K.set_num_threads(nt)
            results.append(run("ewise_mul", x.T, np.broadcast_to(bias, (600, 300)).T, x, bias))
    finally:
        K.set_num_threads(before)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_bad_arguments_raise_value_error():
    buf, out = K.Array(8), K.Array(8)
    with pytest.raises(ValueError, match="binary ewise_"):
        K.ewise_strided("ewise_exp", buf, (1,), 0, buf, (1,), 0, out, (8,))
    with pytest.raises(ValueError, match="view `b`"):
        K.ewise_strided("ewise_add", buf, (1,), 0, buf, (2,), 0, out, (8,))
    with pytest.raises(ValueError, match="out"):
        K.ewise_strided("ewise_add", buf, (0,), 0, buf, (0,), 0, K.Array(3), (8,))
    K.ewise_strided("ewise_add", buf, (1,), 0, buf, (1,), 0, K.Array(0), (0,))  # empty: a no-op
