"""Training-mode batch normalisation forward on NDArrays: the device's
``batchnorm_forward`` kernel when it has one, else a composition of primitives (the
reference the conformance suite checks the kernel against).

``x`` is ``(rows, channels)``: statistics per channel (column), biased variance.
"""

from __future__ import annotations

from .composite import _handle
from .ndarray import NDArray, _alloc, _check_device


def batchnorm_forward(
    x: NDArray, weight: NDArray, bias: NDArray, eps: float
) -> tuple[NDArray, NDArray, NDArray, NDArray, NDArray]:
    """``(out, xhat, mean, var, inv_std)``: per column ``mean`` and biased ``var`` of ``x``,
    ``inv_std = (var + eps) ** -0.5``, ``xhat = (x - mean) * inv_std`` and
    ``out = xhat * weight + bias`` (``weight``, ``bias`` and the statistics are ``(channels,)``)."""
    if len(x.shape) != 2 or x.shape[0] < 1 or weight.shape != (x.shape[1],) or bias.shape != (x.shape[1],):
        raise ValueError(f"batchnorm_forward: expected x (rows >= 1, channels) with weight and bias (channels,), "
                         f"got {x.shape}, {weight.shape} and {bias.shape}")
    for other in (weight, bias):
        if other.device is not x.device:
            _check_device(x, other)
        if other.dtype != x.dtype:
            raise ValueError(f"batchnorm_forward: operands must share a dtype, got {x.dtype} and {other.dtype}")
    rows, c = x.shape
    dev = x.device
    if dev.batchnorm_forward is not None:
        out, xhat = _alloc((rows, c), dev, x.dtype), _alloc((rows, c), dev, x.dtype)
        mean, var, inv_std = (_alloc((c,), dev, x.dtype) for _ in range(3))
        dev.batchnorm_forward(_handle(x), _handle(weight), _handle(bias), out._handle, xhat._handle, mean._handle,
                              var._handle, inv_std._handle, rows, c, float(eps))
        return out, xhat, mean, var, inv_std
    # the composition NormStats runs: -(Σx)/n added (bitwise x - mean), then the biased variance
    neg_mean = x.sum(axis=0, keepdims=True) / float(-rows)
    centred = x + neg_mean.broadcast_to(x.shape)
    var = (centred * centred).sum(axis=0, keepdims=True) / float(rows)
    inv_std = (var + float(eps)) ** -0.5
    xhat = centred * inv_std.broadcast_to(x.shape)
    out = xhat * weight.reshape((1, c)).broadcast_to(x.shape) + bias.reshape((1, c)).broadcast_to(x.shape)
    return out, xhat, (neg_mean * -1.0).reshape((c,)), var.reshape((c,)), inv_std.reshape((c,))
