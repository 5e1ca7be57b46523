"""The cpu backend's fused LSTM cell, row gather/scatter and buffer cache: argument
checks and edge cases (the conformance suite compares results with core's fallbacks)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from cpu_kernel_support import K, dev, host


def test_take_rows_copies_rows_and_rejects_bad_indices():
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    out = K.Array(6)
    K.take_rows(dev(table), dev(np.array([3, 0])), out, 2, 3)
    np.testing.assert_array_equal(host(out, (2, 3)), table[[3, 0]])
    for bad in (4.0, -1.0, 1.5, np.nan):
        with pytest.raises(ValueError, match=r"index\[1\] = .* is not a row number in \[0, 4\)"):
            K.take_rows(dev(table), dev(np.array([0, bad])), out, 2, 3)


def test_scatter_add_rows_sums_repeats_and_zeroes_the_rest():
    src = np.arange(9, dtype=np.float32).reshape(3, 3)
    out = K.Array(12)
    K.fill(out, 7.0)  # stale contents must not survive
    K.scatter_add_rows(dev(src), dev(np.array([2, 0, 2])), out, 3, 3)
    want = np.zeros((4, 3), np.float32)
    np.add.at(want, [2, 0, 2], src)
    np.testing.assert_array_equal(host(out, (4, 3)), want)
    with pytest.raises(ValueError, match="whole number of rows"):
        K.scatter_add_rows(dev(src), dev(np.array([2, 0, 2])), K.Array(11), 3, 3)


def test_lstm_cell_checks_sizes():
    with pytest.raises(ValueError, match="gates"):
        K.lstm_cell(K.Array(7), K.Array(2), K.Array(2), K.Array(2), 1, 2)
    with pytest.raises(ValueError, match="dc_prev"):
        K.lstm_cell_backward(K.Array(8), K.Array(2), K.Array(2), K.Array(2), K.Array(8), K.Array(3), 1, 2)


def test_a_freed_large_buffer_is_reused_and_small_ones_are_not_cached():
    before = K._buffer_cache_info()
    a = K.Array(1 << 20)  # 4 MiB
    address = a.ptr()
    del a
    held = K._buffer_cache_info()
    assert held["cached_bytes"] >= before["cached_bytes"] + (4 << 20)
    b = K.Array(1 << 20)
    assert b.ptr() == address and K._buffer_cache_info()["hits"] == held["hits"] + 1
    del b
    K._buffer_cache_clear()
    assert K._buffer_cache_info()["cached_bytes"] == 0
    small = K.Array(100)
    del small
    assert K._buffer_cache_info()["cached_bytes"] == 0


def test_cache_limit_comes_from_the_environment():
    code = ("import needle_backend_cpu._kernels as K; a = K.Array(1 << 20); del a; "
            "i = K._buffer_cache_info(); print(i['limit_bytes'], i['cached_bytes'])")
    for mb, cached in (("0", 0), ("64", 4 << 20)):
        env = dict(os.environ, NEEDLE_CPU_CACHE_MB=mb)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        assert out.stdout.split() == [str(int(mb) << 20), str(cached)]


def test_batchnorm_backward_is_the_same_for_every_thread_count():
    """Row blocks are summed in parallel but added in block order: the bits do not
    depend on the thread count (1000 rows: 16 blocks, the last one partial)."""
    rng = np.random.default_rng(3)
    rows, c = 1000, 37
    g, xhat = (rng.standard_normal((rows, c)).astype(np.float32) for _ in range(2))
    w, inv_std = rng.standard_normal(c).astype(np.float32), rng.uniform(0.5, 2, c).astype(np.float32)
    before = K.get_num_threads()
    results = []
    try:
        for nt in (1, 2, 3, 5):
            K.set_num_threads(nt)
            outs = [K.Array(rows * c), K.Array(c), K.Array(c)]
            K.batchnorm_backward(dev(g), dev(xhat), dev(w), dev(inv_std), *outs, rows, c)
            results.append([host(outs[0], (rows, c)), host(outs[1], (c,)), host(outs[2], (c,))])
    finally:
        K.set_num_threads(before)
    np.testing.assert_allclose(results[0][2], g.astype(np.float64).sum(0), rtol=1e-5, atol=1e-4)
    for other in results[1:]:
        for got, want in zip(other, results[0], strict=True):
            np.testing.assert_array_equal(got, want)


def test_batchnorm_backward_rejects_bad_sizes():
    g = dev(np.zeros((4, 3)))
    small = dev(np.zeros(2))
    with pytest.raises(ValueError, match="weight"):
        K.batchnorm_backward(g, g, small, dev(np.ones(3)), K.Array(12), K.Array(3), K.Array(3), 4, 3)
    with pytest.raises(ValueError, match="rows >= 1"):
        K.batchnorm_backward(g, g, dev(np.ones(3)), dev(np.ones(3)), K.Array(12), K.Array(3), K.Array(3), 0, 3)
