"""2-D convolution over NHWC input with (K, K, C_in, C_out) weights.

The gradients are themselves convolutions (plus dilate/flip/permute/pad/crop), so
they are ordinary differentiable Tensor ops and reuse the device's conv kernel.
"""

from __future__ import annotations

from .. import backend_ndarray as nd
from ..autograd import Tensor, TensorOp
from ..backend_ndarray import NDArray
from .common import check_same_device
from .structure import crop, dilate, flip, pad, permute, transpose


class Conv(TensorOp):
    def __init__(self, stride: int = 1, padding: int = 0) -> None:
        if int(stride) < 1 or int(padding) < 0:
            raise ValueError(f"conv: need stride >= 1 and padding >= 0, got stride={stride}, padding={padding}")
        self.stride = int(stride)
        self.padding = int(padding)

    def compute(self, a: NDArray, b: NDArray) -> NDArray:
        if a.ndim != 4 or b.ndim != 4:
            raise ValueError(
                "conv: expected input (N, H, W, C_in) and weight (K, K, C_in, C_out), "
                f"got shapes {a.shape} and {b.shape}"
            )
        if b.shape[0] != b.shape[1] or a.shape[3] != b.shape[2]:
            raise ValueError(
                f"conv: weight shape {b.shape} does not fit input shape {a.shape}: need a square kernel "
                f"(K, K, C_in, C_out) with C_in = input channels = {a.shape[3]}"
            )
        k, p = b.shape[0], self.padding
        if a.shape[1] + 2 * p < k or a.shape[2] + 2 * p < k:
            raise ValueError(f"conv: kernel size {k} exceeds the padded input of shape {a.shape} (padding {p})")
        if a.dtype != b.dtype or a.device is not b.device:
            check_same_device(a, b, "conv")
            if a.dtype != b.dtype:
                a, b = nd.promote(a, b)
        return nd.conv2d_nhwc(a, b, stride=self.stride, padding=p)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor, Tensor]:
        a, w = node.inputs
        _, h, wd, _ = a.shape
        k, s, p = w.shape[0], self.stride, self.padding
        # rows/cols of the padded input that stride-1 windows start at
        span_h, span_w = h + 2 * p - k + 1, wd + 2 * p - k + 1
        g = out_grad
        if s > 1:  # put the output adjoint back on the stride-1 grid
            g = dilate(g, (1, 2), s - 1)
            if g.shape[1] != span_h or g.shape[2] != span_w:
                n, _, _, c = g.shape
                g = crop(g, ((0, n), (0, span_h), (0, span_w), (0, c)))
        return self._grad_input(g, w, k, p), self._grad_weight(a, g, k, p, span_h, span_w)

    @staticmethod
    def _grad_input(g: Tensor, w: Tensor, k: int, p: int) -> Tensor:
        # full correlation with the flipped kernel, channels swapped
        w_t = transpose(flip(w, (0, 1)), (2, 3))
        q = k - 1 - p
        if q >= 0:
            return Conv(1, q)(g, w_t)
        out = Conv(1, 0)(g, w_t)  # padding wider than the kernel: crop the surplus
        n, hh, ww, c = out.shape
        return crop(out, ((0, n), (-q, hh + q), (-q, ww + q), (0, c)))

    @staticmethod
    def _grad_weight(a: Tensor, g: Tensor, k: int, p: int, span_h: int, span_w: int) -> Tensor:
        # dW[k1,k2,ci,co] = sum_{n,i,j} a_pad[n,k1+i,k2+j,ci] g[n,i,j,co]: a conv of the input
        # (channels as batch) with the adjoint (batch as channels) as the kernel
        a_t = permute(a, (3, 1, 2, 0))  # (C_in, H, W, N)
        g_t = permute(g, (1, 2, 0, 3))  # (span_h, span_w, N, C_out)
        if span_h != span_w:  # the kernel argument must be square: zero-extend both
            extra = abs(span_h - span_w)
            grow_h, grow_w = (extra, 0) if span_h < span_w else (0, extra)
            g_t = pad(g_t, ((0, grow_h), (0, grow_w), (0, 0), (0, 0)))
            a_t = pad(a_t, ((0, 0), (0, grow_h), (0, grow_w), (0, 0)))
        grad = Conv(1, p)(a_t, g_t)  # (C_in, K, K, C_out)
        return permute(grad, (1, 2, 0, 3))


def conv(a: Tensor, b: Tensor, stride: int = 1, padding: int = 1) -> Tensor:
    return Conv(stride, padding)(a, b)
