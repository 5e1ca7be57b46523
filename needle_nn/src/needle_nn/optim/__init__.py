"""``needle.optim``: Optimizer, SGD, Adam and gradient clipping (docs/api.md §5).

Updates work on NDArrays (never through autograd), so a step builds no graph, never
writes into ``.grad`` and keeps each parameter's dtype. A device's fused
``sgd_update``/``adam_update`` kernel is used when it has one.
"""

from .adam import Adam
from .optimizer import Optimizer, clip_grad_norm
from .sgd import SGD

__all__ = ["Adam", "Optimizer", "SGD", "clip_grad_norm"]
