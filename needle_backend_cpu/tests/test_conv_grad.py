"""conv2d_nhwc_grad_input / conv2d_nhwc_grad_weight at sizes that take every path of
conv_grad.cpp: one chunk, several chunks run in parallel, chunks too few for the
threads (a threaded SGEMM per chunk), and the stride-1 input gradient computed as a
forward convolution; the result must not depend on the thread count."""

from __future__ import annotations

import numpy as np
import pytest
from cpu_kernel_support import K, counting_calls, dev, host
from needle.testing._reference import np_conv_nhwc_grad_input, np_conv_nhwc_grad_weight


# (N, H, W, C_in), K, C_out, stride, padding
CASES = [
    ((2, 5, 5, 3), 3, 4, 1, 1),        # one chunk
    ((8, 48, 48, 3), 3, 8, 1, 1),      # weight: 4 chunks of rows; input: 4 chunks of 2 images
    ((2, 64, 64, 16), 3, 16, 2, 1),    # input: an image per chunk, fewer chunks than 2 x threads
    ((128, 1, 1, 16), 3, 32, 1, 1),    # ResNet9's last convs: every window mostly padding
    ((3, 11, 10, 5), 4, 6, 3, 2),      # leftover rows and columns no window reaches
    ((16, 38, 38, 3), 7, 16, 4, 3),    # ResNet9's first conv
    ((16, 6, 6, 32), 3, 24, 1, 1),     # input: stride 1 "same", a forward conv over chunks of G's windows
    ((4, 7, 7, 12), 5, 10, 1, 2),      # input: the same with a 5x5 kernel
    ((4, 7, 7, 12), 3, 10, 1, 0),      # input: stride 1 "valid" (col2im path)
    ((2, 10, 10, 4), 3, 5, 1, 3),      # padding beyond K - 1: border outputs see only padding
]  # fmt: skip


def _operands(shape, k, co, stride, padding, seed=0):
    rng = np.random.default_rng(seed)
    n, h, w, c = shape
    ho, wo = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    x = rng.standard_normal(shape).astype(np.float32)
    wt = rng.standard_normal((k, k, c, co)).astype(np.float32)
    g = rng.standard_normal((n, ho, wo, co)).astype(np.float32)
    return x, wt, g


def _run(name, x, wt, g, stride, padding):
    if name == "conv2d_nhwc_grad_input":
        out = dev(np.full(x.shape, np.nan, np.float32))  # every element must be written
        K.conv2d_nhwc_grad_input(dev(g), dev(wt), out, x.shape, wt.shape, stride, padding)
        return host(out, x.shape)
    out = dev(np.full(wt.shape, np.nan, np.float32))
    K.conv2d_nhwc_grad_weight(dev(x), dev(g), out, x.shape, wt.shape, stride, padding)
    return host(out, wt.shape)


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}k{c[1]}s{c[3]}p{c[4]}" for c in CASES])
@pytest.mark.parametrize("name", ["conv2d_nhwc_grad_input", "conv2d_nhwc_grad_weight"])
def test_conv_grad_matches_reference_and_ignores_thread_count(name, case):
    shape, k, co, stride, padding = case
    x, wt, g = _operands(*case)
    if name == "conv2d_nhwc_grad_input":
        want = np_conv_nhwc_grad_input(g, wt, stride, padding, shape[1:3])
        terms = k * k * co
    else:
        want = np_conv_nhwc_grad_weight(x, g, k, stride, padding)
        terms = g.size // co
    before = K.get_num_threads()
    try:
        results = []
        for nt in (1, 2, 3):
            K.set_num_threads(nt)
            results.append(_run(name, x, wt, g, stride, padding))
    finally:
        K.set_num_threads(before)
    scale = np.sqrt(terms) * 4 * np.finfo(np.float32).eps
    np.testing.assert_allclose(results[0], want, rtol=1e-4, atol=scale * 4)
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


def test_backward_skips_the_adjoint_of_an_input_without_grad():
    """A first conv's images need no adjoint: its input-gradient kernel must not run."""
    import needle as ndl

    dev = ndl.cpu()
    rng = np.random.default_rng(0)
    with counting_calls(dev, "conv2d_nhwc_grad_input", "conv2d_nhwc_grad_weight") as calls:
        x = ndl.Tensor(rng.standard_normal((2, 6, 6, 3)), device=dev, requires_grad=False)
        w = ndl.Tensor(rng.standard_normal((3, 3, 3, 4)), device=dev, requires_grad=True)
        ndl.ops.conv(x, w, stride=1, padding=1).sum().backward()
        assert calls == {"conv2d_nhwc_grad_input": 0, "conv2d_nhwc_grad_weight": 1}
        x2 = ndl.Tensor(x.numpy(), device=dev, requires_grad=True)
        ndl.ops.conv(x2, w, stride=1, padding=1).sum().backward()
        assert calls == {"conv2d_nhwc_grad_input": 1, "conv2d_nhwc_grad_weight": 2}
        want = np_conv_nhwc_grad_input(np.ones((2, 6, 6, 4), np.float32), w.numpy(), 1, 1, (6, 6))
        np.testing.assert_allclose(x2.grad.numpy(), want, rtol=1e-5, atol=1e-5)
