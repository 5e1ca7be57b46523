"""2-D convolution over NHWC input with (K, K, C_in, C_out) weights.

The gradients do the forward's multiply-adds once, whatever the stride (no dilated
adjoint, no adjoint-sized kernel):

- weight: ``dW = im2col(X)^T @ G``, one GEMM (``G``: the output adjoint, a row per pixel);
- input, on a device with a ``conv2d_nhwc`` kernel: stride 1 correlates ``G`` with
  the flipped kernel; stride > 1 splits the kernel into its s*s stride phases and runs
  them as one stride-1 conv (``_phase_correlation``) when that wastes under ~2x;
- input otherwise: ``col2im(G @ W^T)``, one GEMM, then each window added back.

``Im2Col`` and ``Col2Im`` are Tensor ops and each other's adjoints, so every
gradient stays an ordinary differentiable Tensor computation (second derivatives work).
"""

from __future__ import annotations

from .. import backend_ndarray as nd
from ..autograd import Tensor, TensorOp
from ..backend_ndarray import NDArray
from .common import check_same_device
from .mathematic import matmul
from .structure import crop, flip, pad, permute, reshape, transpose


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
        n, h, wd, c_in = a.shape
        k, c_out = w.shape[0], w.shape[3]
        s, p = self.stride, self.padding
        _, ho, wo, _ = out_grad.shape
        rows = n * ho * wo
        g = reshape(out_grad, (rows, c_out))  # one row per output pixel
        cols = reshape(Im2Col(k, s, p)(a), (rows, k * k * c_in))
        # (C_out, rows) @ (rows, K*K*C_in): the small adjoint is the one transposed
        grad_w = reshape(transpose(matmul(transpose(g), cols)), (k, k, c_in, c_out))
        if a.device.conv2d_nhwc is not None and s == 1:
            grad_a = _full_correlation(out_grad, w, k, p)
        elif a.device.conv2d_nhwc is not None and _phase_waste(k, s, ho, wo) <= 2.0:
            grad_a = _phase_correlation(out_grad, w, s, p, h, wd)
        else:
            g_cols = matmul(g, transpose(reshape(w, (k * k * c_in, c_out))))
            grad_a = Col2Im(k, s, p, (h, wd))(reshape(g_cols, (n, ho, wo, k, k, c_in)))
        return grad_a, grad_w


def _full_correlation(g: Tensor, w: Tensor, k: int, p: int) -> Tensor:
    """The stride-1 input adjoint: ``g`` correlated with the flipped kernel, channels
    swapped, padded by ``K - 1 - p`` (cropped where the padding exceeds the kernel)."""
    w_t = transpose(flip(w, (0, 1)), (2, 3))
    q = k - 1 - p
    if q >= 0:
        return Conv(1, q)(g, w_t)
    out = Conv(1, 0)(g, w_t)
    n, hh, ww, c = out.shape
    return crop(out, ((0, n), (-q, hh + q), (-q, ww + q), (0, c)))


def _phase_waste(k: int, s: int, ho: int, wo: int) -> float:
    """Multiply-adds of ``_phase_correlation`` over those of the exact GEMM: the
    sub-kernels are zero-extended to ``T x T`` and the output grid by ``T - 1``.
    Past about 2x the device conv loses to GEMM + col2im (measured on the cpu backend);
    below it (few input channels, large images) col2im's short strided rows lose."""
    t = -(-k // s)
    return (ho + t - 1) * (wo + t - 1) * (t * s) ** 2 / (ho * wo * k * k)


def _phase_correlation(g: Tensor, w: Tensor, s: int, p: int, h: int, wd: int) -> Tensor:
    """The input adjoint for stride ``s`` > 1 as one stride-1 conv (no dilated zeros).

    Padded pixel ``(s*Y + r, s*X + r')`` only meets kernel taps ``(r + s*t, r' + s*u)``,
    so each phase ``(r, r')`` is a full correlation of ``g`` with a ``T x T`` sub-kernel
    (``T = ceil(K / s)``, the kernel zero-extended to ``s*T``). All s*s phases go in the
    output channels of one conv, then are interleaved back onto the pixel grid."""
    k, c_in, c_out = w.shape[0], w.shape[2], w.shape[3]
    n, ho, wo, _ = g.shape
    t = -(-k // s)
    if s * t != k:
        w = pad(w, ((0, s * t - k), (0, s * t - k), (0, 0), (0, 0)))
    w6 = flip(reshape(w, (t, s, t, s, c_in, c_out)), (0, 2))  # [t, r, u, r', c, co]
    kern = reshape(permute(w6, (0, 2, 5, 1, 3, 4)), (t, t, c_out, s * s * c_in))
    y = Conv(1, t - 1)(g, kern)  # (N, Ho+T-1, Wo+T-1, s*s*C_in), channels (r, r', c)
    ys, xs = ho + t - 1, wo + t - 1
    y = permute(reshape(y, (n, ys, xs, s, s, c_in)), (0, 1, 3, 2, 4, 5))
    full = reshape(y, (n, ys * s, xs * s, c_in))  # the padded input's adjoint, maybe short
    top, left = min(p + h, ys * s), min(p + wd, xs * s)
    out = crop(full, ((0, n), (p, top), (p, left), (0, c_in)))
    if top < p + h or left < p + wd:  # rows/cols no window reaches: zero adjoint
        out = pad(out, ((0, 0), (0, p + h - top), (0, p + wd - left), (0, 0)))
    return out


class Im2Col(TensorOp):
    """``(N, H, W, C)`` -> ``(N, H_out, W_out, K, K, C)``: every K x K window of the
    zero-padded input at the given stride, one copy (adjoint: ``Col2Im``)."""

    def __init__(self, kernel: int, stride: int, padding: int) -> None:
        self.kernel, self.stride, self.padding = int(kernel), int(stride), int(padding)

    def compute(self, a: NDArray) -> NDArray:
        k, s, p = self.kernel, self.stride, self.padding
        a = a.pad(((0, 0), (p, p), (p, p), (0, 0))) if p else a.compact()
        n, h, wd, c = a.shape
        ho, wo = _out_size(h, k, s, "Im2Col"), _out_size(wd, k, s, "Im2Col")
        s_n, s_h, s_w, s_c = a.strides
        return a.as_strided((n, ho, wo, k, k, c), (s_n, s_h * s, s_w * s, s_h, s_w, s_c)).compact()

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        _, h, wd, _ = node.inputs[0].shape
        return Col2Im(self.kernel, self.stride, self.padding, (h, wd))(out_grad)


class Col2Im(TensorOp):
    """``(N, H_out, W_out, K, K, C)`` -> ``(N, H, W, C)``: adds each window's values
    back onto the pixels it was read from, then drops the padding (adjoint: ``Im2Col``).
    ``size`` is the unpadded ``(H, W)``, which the window grid alone does not fix."""

    def __init__(self, kernel: int, stride: int, padding: int, size: tuple[int, int]) -> None:
        self.kernel, self.stride, self.padding = int(kernel), int(stride), int(padding)
        self.size = (int(size[0]), int(size[1]))

    def compute(self, cols: NDArray) -> NDArray:
        k, s, p = self.kernel, self.stride, self.padding
        h, wd = self.size[0] + 2 * p, self.size[1] + 2 * p
        ho, wo = _out_size(h, k, s, "Col2Im"), _out_size(wd, k, s, "Col2Im")
        if cols.ndim != 6 or cols.shape[1:5] != (ho, wo, k, k):
            raise ValueError(
                f"Col2Im: expected windows of shape (N, {ho}, {wo}, {k}, {k}, C) for a {self.size} image "
                f"(kernel {k}, stride {s}, padding {p}), got {cols.shape}"
            )
        n, c = cols.shape[0], cols.shape[5]
        # Kernel offsets i0 + ii with ii < s hit distinct rows (i0 + ii + s*y), so one
        # block of up to s x s offsets is a single non-overlapping accumulate. Rows and
        # columns are grouped by s (out viewed as (N, R, s, Q, s, C)) so each block's
        # destination is a plain slice; R x s and Q x s cover the padded image.
        t = -(-k // s)
        r, q = max(ho + t - 1, -(-h // s)), max(wo + t - 1, -(-wd // s))
        out = nd.full((n, r * s, q * s, c), 0.0, dtype=cols.dtype, device=cols.device)
        grid = out.reshape((n, r, s, q, s, c))
        for i0 in range(0, k, s):
            bi = min(s, k - i0)
            for j0 in range(0, k, s):
                bj = min(s, k - j0)
                block = (
                    slice(None),
                    slice(i0 // s, i0 // s + ho),
                    slice(0, bi),
                    slice(j0 // s, j0 // s + wo),
                    slice(0, bj),
                    slice(None),
                )
                part = cols[:, :, :, i0 : i0 + bi, j0 : j0 + bj, :].permute((0, 1, 3, 2, 4, 5))
                grid[block] = grid[block] + part
        return out[:, p : p + self.size[0], p : p + self.size[1], :].compact()

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return Im2Col(self.kernel, self.stride, self.padding)(out_grad)


def _out_size(padded: int, k: int, s: int, who: str) -> int:
    if padded < k:
        raise ValueError(f"{who}: a {k}x{k} kernel does not fit a padded extent of {padded}")
    return (padded - k) // s + 1


def conv(a: Tensor, b: Tensor, stride: int = 1, padding: int = 1) -> Tensor:
    return Conv(stride, padding)(a, b)
