"""Row lookups never build a (count, rows) one-hot matrix on devices without the
take_rows kernel: a loss picking one logit per row of a 10k vocabulary would need
gigabytes (the LSTM LM's SoftmaxLoss did, on cpu_numpy and opencl)."""

from __future__ import annotations

import tracemalloc

import needle as ndl
import needle.nn as nn
import numpy as np
from needle import backend_ndarray as nd

N, K = 64, 2000  # a one-hot over the n * k flattened logits: 64 x 128,000 floats = 32 MB


def _peak_bytes(fn) -> int:
    tracemalloc.start()  # NumPy reports its buffers to tracemalloc: cpu_numpy's memory is visible
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_take_rows_fallback_moves_rows_not_a_one_hot_matrix():
    dev = ndl.cpu_numpy()
    assert not dev.has_kernel("take_rows")  # the fallback path is what this checks
    table = nd.array(np.arange(N * K, dtype=np.float32).reshape(N * K, 1), device=dev)
    index = nd.array(np.arange(N, dtype=np.float32) * K, device=dev)
    out = []
    peak = _peak_bytes(lambda: out.append(nd.take_rows(table, index)))
    np.testing.assert_array_equal(out[0].numpy()[:, 0], np.arange(N) * K)
    assert peak < 8 * N * K, f"take_rows fallback peaked at {peak / 1e6:.1f} MB"  # the table copy, twice at most


def test_softmax_loss_over_a_large_vocabulary_stays_small():
    dev = ndl.cpu_numpy()
    rng = np.random.default_rng(0)
    logits = ndl.Tensor(rng.standard_normal((N, K)).astype(np.float32), device=dev)
    labels = ndl.Tensor(rng.integers(0, K, N).astype(np.float32), device=dev, requires_grad=False)

    def step():
        nn.SoftmaxLoss()(logits, labels).backward()

    peak = _peak_bytes(step)
    assert peak < 32 * N * K, f"SoftmaxLoss peaked at {peak / 1e6:.1f} MB"  # a few (n, k) float32 temporaries
