"""SGEMM (packed panels or B in place for CPUs, local-memory tiles for GPUs) and batches."""

from __future__ import annotations

import numpy as np
import pytest

SHAPES = [(1, 1, 1), (1, 5, 1), (3, 4, 5), (8, 16, 16), (9, 17, 33), (64, 64, 64), (100, 784, 100), (130, 3, 70)]


@pytest.fixture(params=["packed", "direct", "local"])
def variant(runtime, request):
    """Each kernel on every shape: "packed" repacks B first, "direct" reads it in place."""
    saved = runtime.matmul_variant, runtime.matmul_direct_max
    runtime.matmul_variant = "local" if request.param == "local" else "packed"
    runtime.matmul_direct_max = {"packed": -1, "direct": 1 << 40}.get(request.param, saved[1])
    yield request.param
    runtime.matmul_variant, runtime.matmul_direct_max = saved


def _tolerance(n):
    return dict(rtol=1e-5 * max(1.0, np.sqrt(n)), atol=1e-5 * n)


@pytest.mark.parametrize("m,n,p", SHAPES)
def test_matmul_matches_numpy(kernels, host, rng, variant, m, n, p):
    a = rng.standard_normal((m, n)).astype(np.float32)
    b = rng.standard_normal((n, p)).astype(np.float32)
    out = host.empty(m * p)
    kernels["matmul"](host.put(a), host.put(b), out, m, n, p)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(host.get(out, (m, p)), expected, **_tolerance(n))


@pytest.mark.parametrize("batch,m,n,p", [(1, 4, 4, 4), (3, 9, 17, 20), (5, 32, 8, 48)])
def test_batched_matmul(kernels, host, rng, variant, batch, m, n, p):
    a = rng.standard_normal((batch, m, n)).astype(np.float32)
    b = rng.standard_normal((batch, n, p)).astype(np.float32)
    out = host.empty(batch * m * p)
    kernels["batched_matmul"](host.put(a), host.put(b), out, batch, m, n, p)
    np.testing.assert_allclose(host.get(out, (batch, m, p)), a.astype(np.float64) @ b, **_tolerance(n))


def test_matmul_with_empty_inner_dimension_is_zero(kernels, host):
    out = host.put(np.full(6, 9.0))
    kernels["matmul"](host.empty(0), host.empty(0), out, 2, 0, 3)
    np.testing.assert_array_equal(host.get(out, (2, 3)), np.zeros((2, 3)))


def test_matmul_rejects_small_buffers(kernels, host):
    with pytest.raises(ValueError, match="too small"):
        kernels["matmul"](host.empty(4), host.empty(4), host.empty(4), 2, 3, 2)


def test_matmul_propagates_nan_and_inf(kernels, host):
    a = np.array([[np.nan, 1.0], [np.inf, 0.0]], np.float32)
    out = host.empty(4)
    kernels["matmul"](host.put(a), host.put(np.eye(2, dtype=np.float32)), out, 2, 2, 2)
    got = host.get(out, (2, 2))
    assert np.isnan(got[0, 0]) and got[1, 0] == np.inf


def test_packed_variant_reads_a_small_b_in_place(runtime, kernels, host):
    """One launch for a small B (no pack_b); a large one is repacked first."""
    saved = runtime.matmul_variant
    runtime.matmul_variant = "packed"
    try:
        launched = []
        for n in (100, 1024):
            a, b, out = host.empty(8 * n), host.empty(n * 200), host.empty(8 * 200)
            runtime.finish()
            kernels["matmul"](a, b, out, 8, n, 200)
            launched.append([name for name, _ in runtime.pending])
        runtime.finish()
    finally:
        runtime.matmul_variant = saved
    assert launched == [["matmul_direct"], ["pack_b", "matmul_packed"]]
