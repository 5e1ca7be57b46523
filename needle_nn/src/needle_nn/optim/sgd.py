"""Stochastic gradient descent with the course's momentum (``(1 - β)`` dampening)."""

from __future__ import annotations

from collections.abc import Iterable

from needle_core.autograd import Tensor

from .optimizer import Optimizer


class SGD(Optimizer):
    """``g = grad + wd*w; u = momentum*u + (1-momentum)*g; w = w - lr*u``."""

    _slots = ("u",)

    def __init__(self, params: Iterable[Tensor], lr: float = 0.01, momentum: float = 0.0,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params)
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.u: dict[Tensor, object] = {}

    def step(self) -> None:
        # Python floats: a NumPy float64 hyper-parameter must not promote float32 weights.
        lr, momentum, wd = float(self.lr), float(self.momentum), float(self.weight_decay)
        for p, w, g, fused in self._updates("sgd_update"):
            if fused is not None:
                u = self.u.get(p)
                if u is None:
                    u = self.u[p] = self._zeros_like(w)
                fused(w._handle, g._handle, u._handle, w.size, lr, momentum, wd)
                continue
            if wd:
                g = g + w * wd
            u = self.u.get(p)
            u = g * (1.0 - momentum) if u is None else u * momentum + g * (1.0 - momentum)
            self.u[p] = u
            p.cached_data = w - u * lr


# One class identity across importlib.reload / IPython %autoreload (see needle_core._reload).
from needle_core._reload import keep_classes  # noqa: E402

keep_classes(globals())
