"""The fused softmax cross-entropy kernels of docs/backends.md §3 in NumPy: the
reference the conformance suite holds the compiled backends to. Each follows the
composition's steps (logsumexp minus the picked logit; core's Softmax op times the
upstream gradient, minus it at the label), so inf/NaN logits give the same values."""

from __future__ import annotations

import numpy as np
from needle_core.views import check_class_labels

from .runtime import quiet


def _rows(kernel: str, logits, labels, rows: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The logits as ``(rows, classes)`` and the labels as int64, checked before any write."""
    check_class_labels(kernel, logits, labels, rows, classes, lambda: labels.array)
    return logits.array.reshape(rows, classes), labels.array.astype(np.int64)


@quiet
def softmax_cross_entropy(logits, labels, out, rows: int, classes: int) -> None:
    x, y = _rows("softmax_cross_entropy", logits, labels, rows, classes)
    m = x.max(axis=1, keepdims=True)
    m[~np.isfinite(m)] = 0.0  # as the logsumexp kernel: a +-inf/NaN max comes out of the sum unshifted
    e = np.subtract(x, m)  # the one (rows, classes) temporary
    lse = np.log(np.exp(e, out=e).sum(axis=1)) + m[:, 0]
    np.subtract(lse, x[np.arange(rows), y], out=out.array)


@quiet
def softmax_cross_entropy_backward(logits, labels, out_grad, dlogits, rows: int, classes: int) -> None:
    x, y = _rows("softmax_cross_entropy_backward", logits, labels, rows, classes)
    if out_grad.size != rows or dlogits.size != rows * classes:
        raise ValueError(f"softmax_cross_entropy_backward: expected out_grad of {rows} and dlogits of "
                         f"{rows * classes} elements, got {out_grad.size} and {dlogits.size}")
    shift = np.fmax(x.max(axis=1, keepdims=True), np.finfo(x.dtype).min)
    d = dlogits.array.reshape(rows, classes)
    np.exp(np.subtract(x, shift, out=d), out=d)  # in dlogits: no (rows, classes) temporary
    total = np.fmax(d.sum(axis=1, keepdims=True), 1.0)  # NaN -> 1, as the composition's maximum(1.0)
    d /= total
    d *= out_grad.array[:, None]
    d[np.arange(rows), y] += -out_grad.array
