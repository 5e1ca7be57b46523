"""2-D convolution over NHWC input with (K, K, C_in, C_out) weights.

The gradients do the forward's multiply-adds once, whatever the stride (no dilated
adjoint, no adjoint-sized kernel):

- weight: ``ConvGradWeight``, ``dW = im2col(X)^T @ G`` (``G``: the output adjoint, a
  row per pixel), the device's ``conv2d_nhwc_grad_weight`` kernel when it has one;
- input, on a device with a ``conv2d_nhwc_grad_input`` kernel: ``ConvGradInput``;
- input, on a device with only ``conv2d_nhwc``: stride 1 correlates ``G`` with
  the flipped kernel; stride > 1 splits the kernel into its s*s stride phases and runs
  them as one stride-1 conv (``_phase_correlation``) when that wastes under ~2x;
- input otherwise: ``col2im(G @ W^T)``, one GEMM, then each window added back.

``Conv``, ``ConvGradInput`` and ``ConvGradWeight`` are the three partial derivatives of
``<conv(X, W), G>``, so each one's adjoints are the other two (second derivatives
work); ``Im2Col`` and ``Col2Im`` are likewise each other's adjoints.
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
        # (view, its compact copy): an input view (NCHW images seen as NHWC) is copied
        # once, for the forward and the weight gradient both
        self._compacted: tuple[NDArray, NDArray] | None = None

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
        if not a.is_compact():
            view, a = a, a.compact()
            self._compacted = (view, a)
        return nd.conv2d_nhwc(a, b, stride=self.stride, padding=p)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, w = node.inputs
        n, h, wd, c_in = a.shape
        k, c_out = w.shape[0], w.shape[3]
        s, p = self.stride, self.padding
        if not out_grad.requires_grad and a.device.conv2d_nhwc_grad_input is not None:
            # both adjoint kernels read G compact: copy a strided G (NCHW modules) once, not twice
            data = out_grad.realize_cached_data()
            if not data.is_compact():
                out_grad = Tensor.make_const(data.compact())
        # an input without requires_grad (a first layer's images) gets None: its GEMM is skipped
        x = a
        if not a.requires_grad and self._compacted is not None and self._compacted[0] is a.realize_cached_data():
            x = Tensor.make_const(self._compacted[1])  # the forward's copy (a constant: no adjoint needed)
        grad_w = ConvGradWeight(k, s, p)(x, out_grad) if w.requires_grad else None
        if not a.requires_grad:
            grad_a = None
        elif a.device.conv2d_nhwc_grad_input is not None:
            grad_a = ConvGradInput(s, p, (h, wd))(out_grad, w)
        elif a.device.conv2d_nhwc is not None and s == 1:
            grad_a = _full_correlation(out_grad, w, k, p)
        elif a.device.conv2d_nhwc is not None and _phase_waste(k, s, *out_grad.shape[1:3]) <= 2.0:
            grad_a = _phase_correlation(out_grad, w, s, p, h, wd)
        else:
            _, ho, wo, _ = out_grad.shape
            g = reshape(out_grad, (n * ho * wo, c_out))  # one row per output pixel
            g_cols = matmul(g, transpose(reshape(w, (k * k * c_in, c_out))))
            grad_a = Col2Im(k, s, p, (h, wd))(reshape(g_cols, (n, ho, wo, k, k, c_in)))
        return grad_a, grad_w


class ConvGradInput(TensorOp):
    """``(G, W) -> dX``: the input adjoint of ``Conv(stride, padding)`` for an input of
    spatial ``size``; adjoints ``Conv(dX̄, W)`` and ``ConvGradWeight(dX̄, G)``."""

    def __init__(self, stride: int, padding: int, size: tuple[int, int]) -> None:
        self.stride, self.padding = int(stride), int(padding)
        self.size = (int(size[0]), int(size[1]))

    def compute(self, g: NDArray, w: NDArray) -> NDArray:
        return nd.conv2d_nhwc_grad_input(g, w, self.stride, self.padding, self.size)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor | None, Tensor | None]:
        g, w = node.inputs
        return (Conv(self.stride, self.padding)(out_grad, w) if g.requires_grad else None,
                ConvGradWeight(w.shape[0], self.stride, self.padding)(out_grad, g) if w.requires_grad else None)


class ConvGradWeight(TensorOp):
    """``(X, G) -> dW``: the kernel adjoint of ``Conv(stride, padding)`` with a K x K
    kernel; adjoints ``ConvGradInput(G, W̄)`` and ``Conv(X, W̄)``."""

    def __init__(self, kernel: int, stride: int, padding: int) -> None:
        self.kernel, self.stride, self.padding = int(kernel), int(stride), int(padding)

    def compute(self, x: NDArray, g: NDArray) -> NDArray:
        return nd.conv2d_nhwc_grad_weight(x, g, self.kernel, self.stride, self.padding)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor | None, Tensor | None]:
        x, g = node.inputs
        size = (x.shape[1], x.shape[2])
        return (ConvGradInput(self.stride, self.padding, size)(g, out_grad) if x.requires_grad else None,
                Conv(self.stride, self.padding)(x, out_grad) if g.requires_grad else None)


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
        return nd.im2col(a, self.kernel, self.stride, self.padding)

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
        if cols.ndim != 6 or cols.shape[3:5] != (self.kernel, self.kernel):
            raise ValueError(f"Col2Im: expected windows of shape (N, Ho, Wo, {self.kernel}, {self.kernel}, C), "
                             f"got {cols.shape}")
        return nd.col2im(cols, self.stride, self.padding, self.size)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return Im2Col(self.kernel, self.stride, self.padding)(out_grad)


def conv(a: Tensor, b: Tensor, stride: int = 1, padding: int = 1) -> Tensor:
    return Conv(stride, padding)(a, b)
