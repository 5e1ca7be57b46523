"""Softmax cross-entropy on NDArrays: the device's fused ``softmax_cross_entropy`` /
``softmax_cross_entropy_backward`` kernels when it has them, else the composition
they fuse (the reference the conformance suite checks the kernels against).

``logits`` is ``(rows, classes)``; ``labels`` holds one class number per row as a
value of the logits' dtype (whole numbers in ``[0, classes)``), shape ``(rows,)``.
"""

from __future__ import annotations

import numpy as np

from .composite import _handle, logsumexp
from .gather import scatter_add_rows, take_rows
from ._operands import check_partners
from .ndarray import NDArray, _alloc


def _shape(logits: NDArray, labels: NDArray, name: str) -> tuple[int, int]:
    if len(logits.shape) != 2 or logits.shape[1] < 1 or tuple(labels.shape) != (logits.shape[0],):
        raise ValueError(f"{name}: expected logits (rows, classes >= 1) and labels (rows,), "
                         f"got {logits.shape} and {labels.shape}")
    check_partners(name, logits, "the logits", labels=labels)
    return logits.shape[0], logits.shape[1]


def _flat_positions(labels: NDArray, rows: int, classes: int, name: str) -> NDArray:
    """``r * classes + labels[r]``: where each row's label sits in the flattened logits."""
    y = labels.numpy()
    bad = ~((y >= 0) & (y < classes) & (y == np.floor(y)))
    if bad.any():
        r = int(np.argmax(bad))
        raise ValueError(f"{name}: labels[{r}] = {y[r]} is not a class number in [0, {classes})")
    flat = np.arange(rows) * classes + y.astype(np.int64)
    return NDArray(flat.astype(labels.dtype), device=labels.device, dtype=labels.dtype)


def softmax_cross_entropy(logits: NDArray, labels: NDArray) -> NDArray:
    """``(rows,)``: ``logsumexp(logits[r]) - logits[r, labels[r]]`` for every row."""
    rows, classes = _shape(logits, labels, "softmax_cross_entropy")
    dev = logits.device
    if dev.softmax_cross_entropy is not None:
        out = _alloc((rows,), dev, logits.dtype)
        dev.softmax_cross_entropy(_handle(logits), _handle(labels), out._handle, rows, classes)
        return out
    flat = _flat_positions(labels, rows, classes, "softmax_cross_entropy")
    picked = take_rows(logits.reshape((rows * classes, 1)), flat).reshape((rows,))
    return logsumexp(logits, (1,)) - picked


def softmax_cross_entropy_backward(logits: NDArray, labels: NDArray, out_grad: NDArray) -> NDArray:
    """The adjoint of the logits given that of the per-row loss ``out_grad (rows,)``:
    ``out_grad[r] * (softmax(logits[r]) - onehot(labels[r]))``."""
    rows, classes = _shape(logits, labels, "softmax_cross_entropy_backward")
    if tuple(out_grad.shape) != (rows,):
        raise ValueError(f"softmax_cross_entropy_backward: expected out_grad of shape ({rows},), got {out_grad.shape}")
    dev, dtype = logits.device, logits.dtype
    if dev.softmax_cross_entropy_backward is not None:
        dlogits = _alloc(logits.shape, dev, dtype)
        dev.softmax_cross_entropy_backward(_handle(logits), _handle(labels), _handle(out_grad), dlogits._handle,
                                           rows, classes)
        return dlogits
    # core's Softmax op (ops/logarithmic.py) times out_grad, then -out_grad added at each label
    flat = _flat_positions(labels, rows, classes, "softmax_cross_entropy_backward")
    shape = logits.shape
    shift = logits.max(axis=(1,), keepdims=True).maximum(float(np.finfo(np.dtype(dtype)).min))
    e = (logits - shift.broadcast_to(shape)).exp()
    probs = e / e.sum(axis=(1,), keepdims=True).maximum(1.0).broadcast_to(shape)
    spread = out_grad.reshape((rows, 1)).broadcast_to(shape) * probs
    return spread + scatter_add_rows(-out_grad.reshape((rows, 1)), flat, rows * classes).reshape(shape)
