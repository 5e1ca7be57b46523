"""Fused SGD and Adam steps against the formulas of docs/backends.md §3."""

from __future__ import annotations

import numpy as np
import pytest


def test_sgd_update(kernels, host, rng):
    n, lr, mom, wd = 1000, 0.1, 0.9, 0.01
    w, g, u = (rng.standard_normal(n).astype(np.float32) for _ in range(3))
    bw, bg, bu = host.put(w), host.put(g), host.put(u)
    kernels["sgd_update"](bw, bg, bu, n, lr, mom, wd)
    g2 = g + wd * w
    u2 = mom * u + (1 - mom) * g2
    np.testing.assert_allclose(host.get(bu, (n,)), u2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(host.get(bw, (n,)), w - lr * u2, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(host.get(bg, (n,)), g)  # the gradient is read only


def test_adam_update(kernels, host, rng):
    n, lr, b1, b2, eps, wd, t = 777, 0.01, 0.9, 0.999, 1e-8, 0.001, 3
    w, g = rng.standard_normal(n), rng.standard_normal(n)
    m, v = rng.standard_normal(n) * 0.1, np.abs(rng.standard_normal(n)) * 0.1
    bufs = [host.put(x) for x in (w, g, m, v)]
    kernels["adam_update"](*bufs, n, lr, b1, b2, eps, wd, t)
    g2 = g + wd * w
    m2 = b1 * m + (1 - b1) * g2
    v2 = b2 * v + (1 - b2) * g2**2
    w2 = w - lr * (m2 / (1 - b1**t)) / (np.sqrt(v2 / (1 - b2**t)) + eps)
    for buf, expected in zip((bufs[0], bufs[2], bufs[3]), (w2, m2, v2), strict=True):
        np.testing.assert_allclose(host.get(buf, (n,)), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["sgd_update", "adam_update"])
@pytest.mark.parametrize("bad", [4, 16])  # shorter and longer than the parameter
def test_optimiser_kernels_reject_buffers_of_another_size(kernels, host, name, bad):
    n = 8
    bufs = [host.put(np.ones(n)) for _ in range(4 if name == "adam_update" else 3)]
    bufs[1] = host.put(np.ones(bad))  # the gradient
    hyper = (0.1, 0.9, 0.0) if name == "sgd_update" else (0.1, 0.9, 0.999, 1e-8, 0.0, 1)
    with pytest.raises(ValueError, match=f"exactly {n} elements, but g has {bad}"):
        kernels[name](*bufs, n, *hyper)
