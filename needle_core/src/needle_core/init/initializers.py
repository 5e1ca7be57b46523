"""Xavier (Glorot) and Kaiming (He) initialisers, drawn as the course draws them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..autograd import Tensor
from .basic import rand, randn

_GAINS = {"relu": math.sqrt(2.0)}


def _gain(nonlinearity: str) -> float:
    try:
        return _GAINS[nonlinearity]
    except KeyError:
        raise ValueError(f"unsupported nonlinearity {nonlinearity!r}: expected one of {sorted(_GAINS)}") from None


def xavier_uniform(
    fan_in: int, fan_out: int, gain: float = 1.0, shape: Sequence[int] | None = None, **kwargs: Any
) -> Tensor:
    """Uniform in ``±gain * sqrt(6 / (fan_in + fan_out))``."""
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return rand(*(shape or (fan_in, fan_out)), low=-a, high=a, **kwargs)


def xavier_normal(
    fan_in: int, fan_out: int, gain: float = 1.0, shape: Sequence[int] | None = None, **kwargs: Any
) -> Tensor:
    """Normal with std ``gain * sqrt(2 / (fan_in + fan_out))``."""
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return randn(*(shape or (fan_in, fan_out)), mean=0.0, std=std, **kwargs)


def kaiming_uniform(
    fan_in: int, fan_out: int, shape: Sequence[int] | None = None, nonlinearity: str = "relu", **kwargs: Any
) -> Tensor:
    """Uniform in ``±sqrt(2) * sqrt(3 / fan_in)``, drawn with ``shape or (fan_in, fan_out)``."""
    bound = _gain(nonlinearity) * math.sqrt(3.0 / fan_in)
    return rand(*(shape or (fan_in, fan_out)), low=-bound, high=bound, **kwargs)


def kaiming_normal(
    fan_in: int, fan_out: int, shape: Sequence[int] | None = None, nonlinearity: str = "relu", **kwargs: Any
) -> Tensor:
    """Normal with std ``sqrt(2) / sqrt(fan_in)``."""
    std = _gain(nonlinearity) / math.sqrt(fan_in)
    return randn(*(shape or (fan_in, fan_out)), mean=0.0, std=std, **kwargs)
