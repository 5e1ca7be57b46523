"""PyTorch counterparts of needle's building blocks, for the model rows' torch
baselines (imported inside ``torch_model()``: torch loads only when a row needs it)."""

from __future__ import annotations

from typing import Any

from torch import nn


class Residual(nn.Module):
    """``fn(x) + x``, as ``needle.nn.Residual``."""

    def __init__(self, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: Any) -> Any:
        return self.fn(x) + x
