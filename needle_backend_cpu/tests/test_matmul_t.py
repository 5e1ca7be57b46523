"""matmul_t: products of transposed operands read while packing (no transposed copy).

The conformance suite checks the kernel against NumPy and against core's fallback; here:
the large-size paths (k blocks, threads, edge tiles) and that core actually routes a
backward pass's transposed views to it instead of compacting them."""

from __future__ import annotations

import numpy as np
import pytest
from cpu_kernel_support import K, counting_calls, dev, host


@pytest.mark.parametrize("trans_a,trans_b", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("m,n,p", [(1, 300, 5), (3, 5, 700), (100, 784, 100), (784, 100, 100), (29, 600, 50),
                                   (257, 33, 1030), (16, 16, 16), (4, 4, 4)])
def test_matmul_t_matches_numpy(m, n, p, trans_a, trans_b):
    rng = np.random.default_rng(m * n + p)
    a, b = rng.standard_normal((m, n)).astype(np.float32), rng.standard_normal((n, p)).astype(np.float32)
    out = K.Array(m * p)
    K.matmul_t(dev(a.T if trans_a else a), dev(b.T if trans_b else b), out, m, n, p, trans_a, trans_b)
    want = a.astype(np.float64) @ b.astype(np.float64)
    np.testing.assert_allclose(host(out, (m, p)), want, rtol=1e-4, atol=1e-4 * n ** 0.5)


def test_matmul_t_checks_operand_sizes():
    with pytest.raises(ValueError, match="matmul_t"):
        K.matmul_t(K.Array(6), K.Array(6), K.Array(3), 2, 3, 2, True, False)  # out needs 4 elements


def test_a_backward_pass_reads_transposed_views_without_compacting():
    import needle as ndl

    cpu = ndl.cpu()
    if not cpu.enabled():
        pytest.skip(cpu.unavailable_message())
    rng = np.random.default_rng(0)
    x = ndl.Tensor(rng.standard_normal((30, 20)).astype(np.float32), device=cpu)
    w = ndl.Tensor(rng.standard_normal((20, 10)).astype(np.float32), device=cpu)
    g = rng.standard_normal((30, 10)).astype(np.float32)
    with counting_calls(cpu, "compact", "matmul_t") as calls:
        (x @ w).backward(ndl.Tensor(g, device=cpu))
    assert calls == {"compact": 0, "matmul_t": 2}  # g @ w.T and x.T @ g
    np.testing.assert_allclose(x.grad.numpy(), g @ w.numpy().T, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(w.grad.numpy(), x.numpy().T @ g, rtol=1e-4, atol=1e-5)
