"""hw2's MLPResNet, its epoch loop and ``train_mnist`` (docs/api.md §7)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import nn, optim
from ..data import DataLoader, MNISTDataset
from ._loop import run_epoch


def _extra(device: Any, dtype: str) -> dict[str, Any]:
    # Only pass device/dtype when asked, so a course-style custom ``norm`` class still works.
    kwargs: dict[str, Any] = {}
    if device is not None:
        kwargs["device"] = device
    if dtype != "float32":
        kwargs["dtype"] = dtype
    return kwargs


def ResidualBlock(dim: int, hidden_dim: int, norm: Callable[..., nn.Module] = nn.BatchNorm1d, drop_prob: float = 0.1,
                  *, device: Any = None, dtype: str = "float32") -> nn.Module:
    kw = _extra(device, dtype)
    return nn.Sequential(
        nn.Residual(nn.Sequential(
            nn.Linear(dim, hidden_dim, **kw), norm(hidden_dim, **kw), nn.ReLU(), nn.Dropout(drop_prob),
            nn.Linear(hidden_dim, dim, **kw), norm(dim, **kw),
        )),
        nn.ReLU(),
    )


def MLPResNet(dim: int, hidden_dim: int = 100, num_blocks: int = 3, num_classes: int = 10,
              norm: Callable[..., nn.Module] = nn.BatchNorm1d, drop_prob: float = 0.1, *, device: Any = None,
              dtype: str = "float32") -> nn.Module:
    kw = _extra(device, dtype)
    return nn.Sequential(
        nn.Linear(dim, hidden_dim, **kw),
        nn.ReLU(),
        *[ResidualBlock(hidden_dim, hidden_dim // 2, norm, drop_prob, **kw) for _ in range(num_blocks)],
        nn.Linear(hidden_dim, num_classes, **kw),
    )


def epoch(dataloader: DataLoader, model: nn.Module, opt: optim.Optimizer | None = None) -> tuple[float, float]:
    """One pass; trains when ``opt`` is given. Returns ``(error_rate, mean_loss)`` per sample."""
    np.random.seed(4)
    accuracy, loss = run_epoch(dataloader, model, nn.SoftmaxLoss(), opt)
    return 1.0 - accuracy, loss


def train_mnist(batch_size: int = 100, epochs: int = 10, optimizer: type[optim.Optimizer] = optim.Adam,
                lr: float = 0.001, weight_decay: float = 0.001, hidden_dim: int = 100,
                data_dir: str = "data") -> tuple[float, float, float, float]:
    """Train MLPResNet on ``data_dir``'s MNIST; returns ``(train_err, train_loss, test_err, test_loss)``."""
    np.random.seed(4)
    train_set = MNISTDataset(os.path.join(data_dir, "train-images-idx3-ubyte.gz"),
                             os.path.join(data_dir, "train-labels-idx1-ubyte.gz"))
    test_set = MNISTDataset(os.path.join(data_dir, "t10k-images-idx3-ubyte.gz"),
                            os.path.join(data_dir, "t10k-labels-idx1-ubyte.gz"))
    train_loader = DataLoader(train_set, batch_size, shuffle=True)
    test_loader = DataLoader(test_set, batch_size)
    model = MLPResNet(784, hidden_dim)
    opt = optimizer(model.parameters(), lr=lr, weight_decay=weight_decay)
    train_err = train_loss = float("nan")
    for _ in range(epochs):
        train_err, train_loss = epoch(train_loader, model, opt)
    test_err, test_loss = epoch(test_loader, model, None)
    return train_err, train_loss, test_err, test_loss
