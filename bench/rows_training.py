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


OPTIMISER = "adam"
TORCH_HINT = "PyTorch not installed (pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)"


def batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((BATCH, 784), dtype=np.float32), rng.integers(0, 10, BATCH)


def needle_model(dev):
    from needle.apps.mlp_resnet import MLPResNet

    return MLPResNet(784, 100, num_blocks=3, device=dev)


def torch_model():
    import torch
    from _torch_blocks import Residual
    from torch import nn

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
    return nn.Sequential(nn.Linear(784, 100), nn.ReLU(), *[block(100, 50) for _ in range(3)], nn.Linear(100, 10))


def _torch_row() -> Row:
    try:
        model = torch_model()
    except ImportError:
        return Row(GROUP, "torch", None, key="training torch", skip=TORCH_HINT)
    return torch_step_row(GROUP, model, *batch(), "training torch")


def _needle_rows() -> list[Row]:
    def optimiser_path(dev) -> str:
        return "fused adam_update" if dev.adam_update is not None else "adam via NDArray ops"

    return needle_step_rows(GROUP, needle_model, *batch(), "training torch", optimiser_path)


def rows() -> list[Row]:
    return [_torch_row(), *_needle_rows()]
