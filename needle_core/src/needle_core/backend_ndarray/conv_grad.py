"""The adjoints of ``conv2d_nhwc`` on NDArrays: the device's ``conv2d_nhwc_grad_input`` /
``conv2d_nhwc_grad_weight`` kernels when it has them, else a composition of primitives
(the reference the conformance suite checks the kernels against).

With ``X`` the unpadded input ``(N, H, W, C)``, ``W`` the kernel ``(K, K, C, C_out)`` and
``G`` the output adjoint ``(N, Ho, Wo, C_out)`` of ``conv2d_nhwc(X, W, stride, padding)``:
``grad_input = col2im(G @ W^T)`` and ``grad_weight = im2col(X)^T @ G``.
"""

from __future__ import annotations

from .composite import _handle, matmul
from ._operands import check_partners
from .ndarray import NDArray, _alloc


def _out_size(padded: int, k: int, s: int, who: str) -> int:
    if padded < k:
        raise ValueError(f"{who}: a {k}x{k} kernel does not fit a padded extent of {padded}")
    return (padded - k) // s + 1


def _check(name: str, stride: int, padding: int, first: tuple[str, NDArray], second: tuple[str, NDArray]) -> None:
    if stride < 1 or padding < 0:
        raise ValueError(f"{name}: expected stride >= 1 and padding >= 0, got {stride} and {padding}")
    check_partners(name, first[1], first[0], **{second[0]: second[1]})


def _grid(h: int, wd: int, k: int, stride: int, padding: int, who: str) -> tuple[int, int]:
    """The output grid ``(Ho, Wo)`` of a K x K kernel over an ``h x wd`` input padded by ``padding``."""
    return _out_size(h + 2 * padding, k, stride, who), _out_size(wd + 2 * padding, k, stride, who)


def _device_kernel(name: str, first: NDArray, second: NDArray, out_shape: tuple[int, ...],
                   shape_x: tuple[int, ...], shape_w: tuple[int, ...], stride: int, padding: int) -> NDArray | None:
    """``name(first, second, out, shape_x, shape_w, stride, padding)`` into a new ``out``
    when the device has the kernel (both adjoint kernels share that signature); else None."""
    fn = getattr(first.device, name)
    if fn is None:
        return None
    out = _alloc(out_shape, first.device, first.dtype)
    fn(_handle(first), _handle(second), out._handle, shape_x, shape_w, stride, padding)
    return out


def im2col(a: NDArray, k: int, stride: int, padding: int) -> NDArray:
    """``(N, H, W, C)`` -> ``(N, Ho, Wo, K, K, C)``: every K x K window of the zero-padded
    input at the given stride, one copy."""
    a = a.pad(((0, 0), (padding, padding), (padding, padding), (0, 0))) if padding else a.compact()
    n, h, wd, c = a.shape
    ho, wo = _out_size(h, k, stride, "im2col"), _out_size(wd, k, stride, "im2col")
    s_n, s_h, s_w, s_c = a.strides
    return a.as_strided((n, ho, wo, k, k, c), (s_n, s_h * stride, s_w * stride, s_h, s_w, s_c)).compact()


def col2im(cols: NDArray, stride: int, padding: int, size: tuple[int, int]) -> NDArray:
    """``(N, Ho, Wo, K, K, C)`` -> ``(N, H, W, C)``: adds each window's values back onto
    the pixels it was read from, then drops the padding (the adjoint of ``im2col``).
    ``size`` is the unpadded ``(H, W)``, which the window grid alone does not fix."""
    s, p = stride, padding
    k = cols.shape[3] if cols.ndim == 6 else 0
    h, wd = size[0] + 2 * p, size[1] + 2 * p
    ho, wo = _out_size(h, k, s, "col2im"), _out_size(wd, k, s, "col2im")
    if cols.ndim != 6 or cols.shape[1:5] != (ho, wo, k, k):
        raise ValueError(
            f"col2im: expected windows of shape (N, {ho}, {wo}, {k}, {k}, C) for a {size} image "
            f"(kernel {k}, stride {s}, padding {p}), got {cols.shape}"
        )
    n, c = cols.shape[0], cols.shape[5]
    # Kernel offsets i0 + ii with ii < s hit distinct rows (i0 + ii + s*y), so one
    # block of up to s x s offsets is a single non-overlapping accumulate. Rows and
    # columns are grouped by s (out viewed as (N, R, s, Q, s, C)) so each block's
    # destination is a plain slice; R x s and Q x s cover the padded image.
    t = -(-k // s)
    r, q = max(ho + t - 1, -(-h // s)), max(wo + t - 1, -(-wd // s))
    out = _alloc((n, r * s, q * s, c), cols.device, cols.dtype)
    out.fill(0.0)
    grid = out.reshape((n, r, s, q, s, c))
    for i0 in range(0, k, s):
        bi = min(s, k - i0)
        for j0 in range(0, k, s):
            bj = min(s, k - j0)
            block = (slice(None), slice(i0 // s, i0 // s + ho), slice(0, bi), slice(j0 // s, j0 // s + wo),
                     slice(0, bj), slice(None))  # fmt: skip
            part = cols[:, :, :, i0 : i0 + bi, j0 : j0 + bj, :].permute((0, 1, 3, 2, 4, 5))
            grid[block] = grid[block] + part
    return out[:, p : p + size[0], p : p + size[1], :].compact()


def conv2d_nhwc_grad_input(g: NDArray, w: NDArray, stride: int, padding: int, size: tuple[int, int]) -> NDArray:
    """The input adjoint ``(N, H, W, C)`` of ``conv2d_nhwc(x, w, stride, padding)`` for the
    output adjoint ``g``; ``size`` is the input's ``(H, W)``."""
    _check("conv2d_nhwc_grad_input", stride, padding, ("g", g), ("w", w))
    k, c_in, c_out = w.shape[0], w.shape[2], w.shape[3]
    n = g.shape[0]
    h, wd = int(size[0]), int(size[1])
    ho, wo = _grid(h, wd, k, stride, padding, "conv2d_nhwc_grad_input")
    if len(w.shape) != 4 or w.shape[0] != w.shape[1] or g.shape != (n, ho, wo, c_out):
        raise ValueError(f"conv2d_nhwc_grad_input: expected a kernel (K, K, C_in, C_out) and an output adjoint "
                         f"(N, {ho}, {wo}, C_out) for input size {size}, got {w.shape} and {g.shape}")
    shape_x = (n, h, wd, c_in)
    out = _device_kernel("conv2d_nhwc_grad_input", g, w, shape_x, shape_x, w.shape, stride, padding)
    if out is not None:
        return out
    cols = matmul(g.reshape((n * ho * wo, c_out)), w.compact().reshape((k * k * c_in, c_out)).permute((1, 0)))
    return col2im(cols.reshape((n, ho, wo, k, k, c_in)), stride, padding, (h, wd))


def conv2d_nhwc_grad_weight(x: NDArray, g: NDArray, k: int, stride: int, padding: int) -> NDArray:
    """The kernel adjoint ``(K, K, C, C_out)`` of ``conv2d_nhwc(x, w, stride, padding)`` for
    the output adjoint ``g``."""
    _check("conv2d_nhwc_grad_weight", stride, padding, ("x", x), ("g", g))
    n, h, wd, c_in = x.shape
    ho, wo = _grid(h, wd, k, stride, padding, "conv2d_nhwc_grad_weight")
    c_out = g.shape[3] if len(g.shape) == 4 else -1
    if g.shape != (n, ho, wo, c_out):
        raise ValueError(f"conv2d_nhwc_grad_weight: expected an output adjoint (N, {ho}, {wo}, C_out) for input "
                         f"{x.shape} (kernel {k}, stride {stride}, padding {padding}), got {g.shape}")
    shape_w = (k, k, c_in, c_out)
    out = _device_kernel("conv2d_nhwc_grad_weight", x, g, shape_w, x.shape, shape_w, stride, padding)
    if out is not None:
        return out
    cols = im2col(x, k, stride, padding).reshape((n * ho * wo, k * k * c_in))
    # (C_out, rows) @ (rows, K*K*C_in): the small adjoint is the one transposed
    grad_t = matmul(g.compact().reshape((n * ho * wo, c_out)).permute((1, 0)), cols)
    return grad_t.permute((1, 0)).compact().reshape((k, k, c_in, c_out))
