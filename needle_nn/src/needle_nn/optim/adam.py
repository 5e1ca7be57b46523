"""Adam with bias correction (Kingma & Ba), L2 weight decay added to the gradient."""

from __future__ import annotations

from collections.abc import Iterable

from needle_core.autograd import Tensor

from .optimizer import Optimizer


class Adam(Optimizer):
    """``m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g²; w -= lr*m̂/(sqrt(v̂)+eps)`` with ``t`` counted per step."""

    _slots = ("m", "v")
    _scalars = ("t",)

    def __init__(self, params: Iterable[Tensor], lr: float = 0.01, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(params)
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weight_decay = weight_decay
        self.t = 0
        self.m: dict[Tensor, object] = {}
        self.v: dict[Tensor, object] = {}

    def step(self) -> None:
        self.t += 1
        t = self.t
        lr, b1, b2 = float(self.lr), float(self.beta1), float(self.beta2)
        eps, wd = float(self.eps), float(self.weight_decay)
        for p, w, g, fused in self._updates("adam_update"):
            m, v = self.m.get(p), self.v.get(p)
            if m is None:
                m = self.m[p] = self._zeros_like(w)
                v = self.v[p] = self._zeros_like(w)
            if fused is not None:
                fused(w._handle, g._handle, m._handle, v._handle, w.size, lr, b1, b2, eps, wd, t)
                continue
            if wd:
                g = g + w * wd
            m = self.m[p] = m * b1 + g * (1.0 - b1)
            v = self.v[p] = v * b2 + (g * g) * (1.0 - b2)
            m_hat = m / (1.0 - b1**t)
            v_hat = v / (1.0 - b2**t)
            p.cached_data = w - (m_hat * lr) / (v_hat**0.5 + eps)


# One class identity across importlib.reload / IPython %autoreload (see needle_core._reload).
from needle_core._reload import keep_classes  # noqa: E402

keep_classes(globals())
