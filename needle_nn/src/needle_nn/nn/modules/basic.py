"""The course's basic layers: Linear, activations, containers, loss, dropout."""

from __future__ import annotations

from typing import Any

import numpy as np

from needle_core.autograd import Tensor

from needle_core import init, ops

from ..module import Module, Parameter, check_module


class Identity(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x


class Linear(Module):
    """``y = X @ W + b`` with ``W`` of shape ``(in, out)`` and ``b`` of shape ``(1, out)``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device: Any = None,
                 dtype: str = "float32") -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        # Draw order is the course's: weight first, then the bias as a (out, 1) draw.
        self.weight = Parameter(init.kaiming_uniform(in_features, out_features, device=device, dtype=dtype))
        self.bias = None
        if bias:
            b = init.kaiming_uniform(out_features, 1, device=device, dtype=dtype)
            self.bias = Parameter(b.reshape((1, out_features)))

    def forward(self, X: Tensor) -> Tensor:
        y = X @ self.weight
        # The add broadcasts the bias inside the op: no broadcast_to node per call.
        return y + self.bias if self.bias is not None else y

    def __repr__(self) -> str:
        return f"Linear({self.in_features}, {self.out_features}, bias={self.bias is not None})"


class Flatten(Module):
    """``(B, X0, X1, ...)`` to ``(B, X0 * X1 * ...)``."""

    def forward(self, X: Tensor) -> Tensor:
        size = 1
        for d in X.shape[1:]:
            size *= d
        return X.reshape((X.shape[0], size))


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return ops.relu(x)


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return ops.tanh(x)


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return ops.sigmoid(x)


class Sequential(Module):
    """Applies ``modules`` in order; they are kept as the tuple ``self.modules``."""

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        self.modules = tuple(check_module(m, f"Sequential (argument {i})") for i, m in enumerate(modules))

    def forward(self, x: Tensor) -> Tensor:
        for module in self.modules:
            x = module(x)
        return x

    def __repr__(self) -> str:
        inner = ", ".join(repr(m) for m in self.modules)
        return f"Sequential({inner})"


class SoftmaxLoss(Module):
    """Mean over the batch of ``logsumexp(logits) - logits[y]``: one fused node on devices
    with the ``softmax_cross_entropy`` kernels (no ``(n, k)`` temporaries beyond the
    logits' adjoint), else composed of logsumexp and a label lookup."""

    def forward(self, logits: Tensor, y: Tensor) -> Tensor:
        n, k = logits.shape
        labels = _labels(logits, y)
        dev = logits.device
        if (k <= _EXACT_FLOAT_INT.get(logits.dtype, 0) and dev.has_kernel("softmax_cross_entropy")
                and dev.has_kernel("softmax_cross_entropy_backward")):
            on_device = Tensor(labels, device=dev, dtype=logits.dtype, requires_grad=False)
            return ops.summation(ops.softmax_cross_entropy(logits, on_device)) / n
        lse = ops.logsumexp(logits, axes=(1,))
        return ops.summation(lse - _picked(logits, labels)) / n


# flat positions i * k + y_i are exact in float32 below 2**24 (row numbers are stored as floats)
_EXACT_FLOAT_INT = {"float32": 2**24, "float64": 2**53}


def _labels(logits: Tensor, y: Any) -> np.ndarray:
    """The labels as a host array of ``n`` whole class numbers in ``[0, k)``, or a ValueError."""
    n, k = logits.shape
    labels = np.asarray(y.numpy() if hasattr(y, "numpy") else y).reshape(-1)
    if labels.shape != (n,):
        raise ValueError(f"SoftmaxLoss: expected {n} labels for logits of shape {logits.shape}, got {labels.size}")
    wrong = (labels < 0) | (labels >= k) | (labels != np.floor(labels))
    if wrong.any():
        bad = labels[wrong][0]
        raise ValueError(f"SoftmaxLoss: label {bad:g} is not a class number in [0, {k}): labels are whole "
                         f"numbers 0..{k - 1} (logits of shape {logits.shape})")
    return labels


def _picked(logits: Tensor, labels: np.ndarray) -> Tensor:
    """``logits[i, y_i]`` for every row i: a row lookup in the flattened logits (no
    ``(n, k)`` one-hot matrix: k is the vocabulary of a language model) on devices with a
    ``take_rows`` kernel, else a one-hot product (also where the flat positions would
    not be exact in the dtype)."""
    n, k = logits.shape
    # the lookup needs the device's take_rows kernel: its fallback would copy the logits to the host
    if n * k > _EXACT_FLOAT_INT.get(logits.dtype, 0) or not logits.device.has_kernel("take_rows"):
        y_one_hot = init.one_hot(k, labels, device=logits.device, dtype=logits.dtype)
        return ops.summation(logits * y_one_hot, axes=(1,))
    flat = np.arange(n) * k + labels.astype(np.int64)
    index = Tensor(flat, device=logits.device, dtype=logits.dtype, requires_grad=False)
    return ops.take_rows(logits.reshape((n * k, 1)), index).reshape((n,))


class Dropout(Module):
    """Zeroes each entry with probability ``p`` in training and rescales by ``1/(1-p)``."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        mask = init.randb(*x.shape, p=1 - self.p, device=x.device, dtype=x.dtype)
        return x * mask / (1 - self.p)


class Residual(Module):
    """``fn(x) + x``."""

    def __init__(self, fn: Module) -> None:
        super().__init__()
        self.fn = check_module(fn, "Residual")

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x) + x

    def __repr__(self) -> str:
        return f"Residual({self.fn!r})"


# One class identity across importlib.reload / IPython %autoreload (see needle_core._reload).
from needle_core._reload import keep_classes  # noqa: E402

keep_classes(globals())
