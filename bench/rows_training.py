"""One training step of MLPResNet(784, 100, 3 blocks), batch 100, Adam (lr 1e-3, weight
decay 1e-3): forward, loss, backward, optimiser step. On every available needle device,
against the same model in PyTorch CPU when PyTorch is importable. The throughput
column is samples/s; the ratio column is time ÷ PyTorch time (below 1: faster)."""

from __future__ import annotations

import numpy as np
from _steps import needle_step_rows, torch_step_row
from harness import Row

GROUP = "MLPResNet(784,100,3) batch-100 Adam step"
BATCH = 100


def _batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((BATCH, 784), dtype=np.float32), rng.integers(0, 10, BATCH)


def _torch_row() -> Row:
    try:
        import torch
        from torch import nn
    except ImportError:
        skip = "PyTorch not installed (pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)"
        return Row(GROUP, "torch", None, key="training torch", skip=skip)

    class Residual(nn.Module):
        def __init__(self, fn: nn.Module) -> None:
            super().__init__()
            self.fn = fn

        def forward(self, x):
            return self.fn(x) + x

    def block(dim: int, hidden: int) -> nn.Module:
        return nn.Sequential(
            Residual(
                nn.Sequential(
                    nn.Linear(dim, hidden),
                    nn.BatchNorm1d(hidden),
                    nn.ReLU(),
                    nn.Dropout(0.1),
                    nn.Linear(hidden, dim),
                    nn.BatchNorm1d(dim),
                )
            ),
            nn.ReLU(),
        )

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 100), nn.ReLU(), *[block(100, 50) for _ in range(3)], nn.Linear(100, 10))
    return torch_step_row(GROUP, model, *_batch(), "training torch")


def _needle_rows() -> list[Row]:
    def mlp_resnet(dev):
        from needle.apps.mlp_resnet import MLPResNet

        return MLPResNet(784, 100, num_blocks=3, device=dev)

    def optimiser_path(dev) -> str:
        return "fused adam_update" if dev.adam_update is not None else "adam via NDArray ops"

    return needle_step_rows(GROUP, mlp_resnet, *_batch(), "training torch", optimiser_path)


def rows() -> list[Row]:
    return [_torch_row(), *_needle_rows()]
