"""BatchNorm1d, BatchNorm2d and LayerNorm1d with the course's numerics.

Both norms use the biased variance. In training each norm is one graph node
(``functional_norm.NormTrain``: NDArray forward, analytic Tensor adjoints), which
keeps the per-step op count low. BatchNorm's running statistics are plain Tensors
(buffers, saved in checkpoints) updated with NDArray arithmetic from the statistics
that node computed, so the update builds no graph and keeps the module's dtype even
when the input is float64.
"""

from __future__ import annotations

from typing import Any

from needle_core.autograd import Tensor

from needle_core import init

from ..._arrays import cast, constant
from ..functional_norm import norm_train
from ..module import Module, Parameter


def _shaped(t: Tensor, shape: tuple[int, ...]) -> Tensor:
    """``t`` reshaped for broadcasting; no reshape node when it already has that shape."""
    return t if tuple(t.shape) == shape else t.reshape(shape)


class _BatchNorm(Module):
    """Normalises over every axis but the channel axis (axis 1)."""

    def __init__(self, dim: int, eps: float = 1e-5, momentum: float = 0.1, device: Any = None,
                 dtype: str = "float32") -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.momentum = momentum
        self.weight = Parameter(init.ones(dim, device=device, dtype=dtype))
        self.bias = Parameter(init.zeros(dim, device=device, dtype=dtype))
        self.running_mean = init.zeros(dim, device=device, dtype=dtype)
        self.running_var = init.ones(dim, device=device, dtype=dtype)

    def _axes_and_shape(self, x: Tensor) -> tuple[tuple[int, ...], tuple[int, ...]]:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        axes, stat_shape = self._axes_and_shape(x)
        if len(x.shape) < 2 or x.shape[1] != self.dim:
            raise ValueError(f"{type(self).__name__}({self.dim}): expected an input with {self.dim} channels on "
                             f"axis 1, got shape {tuple(x.shape)}")
        if self.training:
            kept = tuple(1 if i in axes else n for i, n in enumerate(x.shape))
            out, stats = norm_train(x, self.weight, self.bias, axes, kept, kept, self.eps)
            self._update_running(stats.mean(), stats.var)
            return out
        centred = x - _shaped(self.running_mean, stat_shape)
        std = (_shaped(self.running_var, stat_shape) + self.eps) ** 0.5
        return centred / std * _shaped(self.weight, stat_shape) + _shaped(self.bias, stat_shape)

    def _update_running(self, mean: Any, var: Any) -> None:
        """Fold the batch statistics (NDArrays in any shape holding ``dim`` values) in."""
        m = float(self.momentum)
        for name, batch in (("running_mean", mean), ("running_var", var)):
            old = getattr(self, name).realize_cached_data()
            new = old * (1.0 - m) + cast(batch.reshape(old.shape), str(old.dtype)) * m
            setattr(self, name, constant(new))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.dim}, eps={self.eps}, momentum={self.momentum})"


class BatchNorm1d(_BatchNorm):
    """Input ``(batch, dim)``; statistics per feature."""

    def _axes_and_shape(self, x: Tensor) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return (0,), (self.dim,)  # (dim,) already broadcasts against (batch, dim)


class BatchNorm2d(_BatchNorm):
    """Input NCHW; statistics per channel over N, H and W."""

    def _axes_and_shape(self, x: Tensor) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return (0, 2, 3), (1, self.dim, 1, 1)


class LayerNorm1d(Module):
    """Per row of a ``(batch, dim)`` input: ``w * (x - mean) / sqrt(var + eps) + b``."""

    def __init__(self, dim: int, eps: float = 1e-5, device: Any = None, dtype: str = "float32") -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.weight = Parameter(init.ones(dim, device=device, dtype=dtype))
        self.bias = Parameter(init.zeros(dim, device=device, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        if len(x.shape) != 2 or x.shape[1] != self.dim:
            raise ValueError(f"LayerNorm1d({self.dim}): expected an input of shape (batch, {self.dim}), "
                             f"got {tuple(x.shape)}")
        out, _ = norm_train(x, self.weight, self.bias, (1,), (x.shape[0], 1), (1, self.dim), self.eps)
        return out

    def __repr__(self) -> str:
        return f"LayerNorm1d({self.dim}, eps={self.eps})"


# One class identity across importlib.reload / IPython %autoreload (see needle_core._reload).
from needle_core._reload import keep_classes  # noqa: E402

keep_classes(globals())
