"""Training-mode batch normalisation forward and backward on NDArrays: the device's
``batchnorm_forward`` / ``batchnorm_backward`` kernels when it has them, else
compositions of primitives (the references the conformance suite checks the kernels
against).

``x`` is ``(rows, channels)``: statistics per channel (column), biased variance.
"""

from __future__ import annotations

from .composite import _handle
from ._operands import check_partners
from .ndarray import NDArray, _alloc


def batchnorm_forward(
    x: NDArray, weight: NDArray, bias: NDArray, eps: float
) -> tuple[NDArray, NDArray, NDArray, NDArray, NDArray]:
    """``(out, xhat, mean, var, inv_std)``: per column ``mean`` and biased ``var`` of ``x``,
    ``inv_std = (var + eps) ** -0.5``, ``xhat = (x - mean) * inv_std`` and
    ``out = xhat * weight + bias`` (``weight``, ``bias`` and the statistics are ``(channels,)``)."""
    if len(x.shape) != 2 or x.shape[0] < 1 or weight.shape != (x.shape[1],) or bias.shape != (x.shape[1],):
        raise ValueError(f"batchnorm_forward: expected x (rows >= 1, channels) with weight and bias (channels,), "
                         f"got {x.shape}, {weight.shape} and {bias.shape}")
    check_partners("batchnorm_forward", x, "x", weight=weight, bias=bias)
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


def batchnorm_backward(
    g: NDArray, xhat: NDArray, weight: NDArray, inv_std: NDArray
) -> tuple[NDArray, NDArray, NDArray]:
    """``(dx, dweight, dbias)`` for the output adjoint ``g`` of ``batchnorm_forward``
    (``g`` and ``xhat`` ``(rows, channels)``, ``weight`` and ``inv_std`` ``(channels,)``):
    ``dbias = Σ g``, ``dweight = Σ g·xhat`` per column and
    ``dx = weight·inv_std/rows · (rows·g - dbias - xhat·dweight)``."""
    if (len(g.shape) != 2 or g.shape[0] < 1 or tuple(xhat.shape) != tuple(g.shape)
            or weight.shape != (g.shape[1],) or inv_std.shape != (g.shape[1],)):
        raise ValueError(f"batchnorm_backward: expected g and xhat (rows >= 1, channels) with weight and inv_std "
                         f"(channels,), got {g.shape}, {xhat.shape}, {weight.shape} and {inv_std.shape}")
    check_partners("batchnorm_backward", g, "g", xhat=xhat, weight=weight, inv_std=inv_std)
    rows, c = g.shape
    dev = g.device
    if dev.batchnorm_backward is not None:
        dx = _alloc((rows, c), dev, g.dtype)
        dweight, dbias = _alloc((c,), dev, g.dtype), _alloc((c,), dev, g.dtype)
        dev.batchnorm_backward(_handle(g), _handle(xhat), _handle(weight), _handle(inv_std), dx._handle,
                               dweight._handle, dbias._handle, rows, c)
        return dx, dweight, dbias
    # the composition NormTrain's gradient builds from Tensor ops, on arrays
    dbias = g.sum(axis=0, keepdims=True)
    dweight = (g * xhat).sum(axis=0, keepdims=True)
    k = -1.0 / rows
    centred = g + (dbias * k).broadcast_to(g.shape) + xhat * (dweight * k).broadcast_to(g.shape)
    dx = centred * (weight.reshape((1, c)) * inv_std.reshape((1, c))).broadcast_to(g.shape)
    return dx, dweight.reshape((c,)), dbias.reshape((c,))
