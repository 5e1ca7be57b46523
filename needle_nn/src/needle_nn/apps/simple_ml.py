"""The course's ``simple_ml`` helpers (hw1, hw2, hw4) under their course names.

hw1: ``parse_mnist``, ``softmax_loss``, ``nn_epoch``; hw2: ``loss_err``; hw4: the
CIFAR-10 and PTB training/evaluation loops. Like the course file, it re-exports the
names of ``models``. The hw4 helpers each return ``(accuracy, mean loss per sample)``
and call ``np.random.seed(4)`` first.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from needle_core.autograd import Tensor

from needle_core import ops

from .. import nn, optim
from .._arrays import cast
from ..data.mnist import load_mnist
from ..data.text import get_batch
from ._loop import optimise, run_epoch
from .models import *  # noqa: F403 - the course file re-exported its models
from .models import ConvBN, LanguageModel, ResNet9

__all__ = [
    "ConvBN", "LanguageModel", "ResNet9", "epoch_general_cifar10", "epoch_general_ptb", "evaluate_cifar10",
    "evaluate_ptb", "loss_err", "nn_epoch", "parse_mnist", "softmax_loss", "train_cifar10", "train_ptb",
]


# -- hw1 / hw2 --------------------------------------------------------------------
def parse_mnist(image_filename: str, label_filename: str) -> tuple[np.ndarray, np.ndarray]:
    """``(X (n, 784) float32 in [0, 1], y (n,) uint8)`` from gzipped IDX files."""
    return load_mnist(image_filename, label_filename)


def softmax_loss(Z: Tensor, y_one_hot: Tensor) -> Tensor:
    """Mean softmax cross-entropy of logits ``Z`` against one-hot labels (hw1's formula)."""
    lse = ops.log(ops.summation(ops.exp(Z), axes=(1,)))
    return (ops.summation(lse) - ops.summation(Z * y_one_hot)) / Z.shape[0]


def _one_hot(y: np.ndarray, k: int, like: Tensor) -> Tensor:
    onehot = np.zeros((len(y), k), dtype=like.dtype)
    onehot[np.arange(len(y)), np.asarray(y).astype(np.int64)] = 1
    return Tensor(onehot, device=like.device, dtype=like.dtype, requires_grad=False)


def nn_epoch(X: np.ndarray, y: np.ndarray, W1: Tensor, W2: Tensor, lr: float = 0.1,
             batch: int = 100) -> tuple[Tensor, Tensor]:
    """One SGD epoch of the two-layer network ``relu(X @ W1) @ W2``, in order; returns new ``(W1, W2)``."""
    for start in range(0, X.shape[0], batch):
        Xb = Tensor(X[start : start + batch], device=W1.device, requires_grad=False)
        Z = ops.relu(Xb @ W1) @ W2
        loss = softmax_loss(Z, _one_hot(y[start : start + batch], W2.shape[1], W2))
        loss.backward()
        W1, W2 = (
            Tensor(cast(W.realize_cached_data() - cast(W.grad.realize_cached_data(), str(W.dtype)) * float(lr),
                        str(W.dtype)), device=W.device, dtype=W.dtype)
            for W in (W1, W2)
        )
    return W1, W2


def loss_err(h: Tensor, y: np.ndarray) -> tuple[np.ndarray, float]:
    """``(softmax loss, error rate)`` of logits ``h`` against integer labels ``y``."""
    y = np.asarray(y)
    loss = softmax_loss(h, _one_hot(y, h.shape[-1], h))
    return loss.numpy(), float(np.mean(h.numpy().argmax(axis=1) != y))


# -- hw4: CIFAR-10 -------------------------------------------------------------------
def epoch_general_cifar10(dataloader: Any, model: nn.Module, loss_fn: nn.Module = nn.SoftmaxLoss(),
                          opt: optim.Optimizer | None = None) -> tuple[float, float]:
    np.random.seed(4)
    return run_epoch(dataloader, model, loss_fn, opt)


def train_cifar10(model: nn.Module, dataloader: Any, n_epochs: int = 1, optimizer: type = optim.Adam,
                  lr: float = 0.001, weight_decay: float = 0.001, loss_fn: type = nn.SoftmaxLoss
                  ) -> tuple[float, float]:
    np.random.seed(4)
    opt = optimizer(model.parameters(), lr=lr, weight_decay=weight_decay)
    result = (float("nan"), float("nan"))
    for _ in range(n_epochs):
        result = epoch_general_cifar10(dataloader, model, loss_fn(), opt)
    return result


def evaluate_cifar10(model: nn.Module, dataloader: Any, loss_fn: type = nn.SoftmaxLoss) -> tuple[float, float]:
    np.random.seed(4)
    return epoch_general_cifar10(dataloader, model, loss_fn(), None)


# -- hw4: Penn Treebank ---------------------------------------------------------------
def _detach_state(h: Any) -> Any:
    """Truncated BPTT: the next chunk starts from the state's value, not its graph."""
    if h is None:
        return None
    if isinstance(h, tuple):
        return tuple(x.detach() for x in h)
    return h.detach()


def epoch_general_ptb(data: np.ndarray, model: nn.Module, seq_len: int = 40, loss_fn: nn.Module = nn.SoftmaxLoss(),
                      opt: optim.Optimizer | None = None, clip: float | None = None, device: Any = None,
                      dtype: str = "float32") -> tuple[float, float]:
    """One pass over ``data`` (from ``batchify``) in chunks of ``seq_len``."""
    np.random.seed(4)
    model.train() if opt is not None else model.eval()
    h = None
    total_loss, correct, seen = 0.0, 0, 0
    for i in range(0, data.shape[0] - 1, seq_len):
        X, y = get_batch(data, i, seq_len, device=device, dtype=dtype)
        logits, h = model(X, h)
        h = _detach_state(h)
        loss = loss_fn(logits, y)
        if opt is not None:
            optimise(loss, opt, clip)
        n = y.shape[0]
        total_loss += float(loss.numpy()) * n
        correct += int((logits.numpy().argmax(axis=1) == y.numpy()).sum())
        seen += n
    if seen == 0:
        return float("nan"), float("nan")
    return correct / seen, total_loss / seen


def train_ptb(model: nn.Module, data: np.ndarray, seq_len: int = 40, n_epochs: int = 1, optimizer: type = optim.SGD,
              lr: float = 4.0, weight_decay: float = 0.0, loss_fn: type = nn.SoftmaxLoss, clip: float | None = None,
              device: Any = None, dtype: str = "float32") -> tuple[float, float]:
    np.random.seed(4)
    opt = optimizer(model.parameters(), lr=lr, weight_decay=weight_decay)
    result = (float("nan"), float("nan"))
    for _ in range(n_epochs):
        result = epoch_general_ptb(data, model, seq_len, loss_fn(), opt, clip, device, dtype)
    return result


def evaluate_ptb(model: nn.Module, data: np.ndarray, seq_len: int = 40, loss_fn: type = nn.SoftmaxLoss,
                 device: Any = None, dtype: str = "float32") -> tuple[float, float]:
    np.random.seed(4)
    return epoch_general_ptb(data, model, seq_len, loss_fn(), None, None, device, dtype)
