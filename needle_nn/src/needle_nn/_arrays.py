"""Small NDArray helpers shared by nn and optim (state updates that build no graph)."""

from __future__ import annotations

from typing import Any

import numpy as np
from needle_core.autograd import Tensor


def to_numpy(value: Any) -> np.ndarray:
    """A Tensor, NDArray, NumPy array or scalar as a NumPy array."""
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def cast(arr: Any, dtype: str) -> Any:
    """``arr`` (an NDArray) in ``dtype``; the same object when it already is."""
    if str(arr.dtype) == str(dtype):
        return arr
    from needle_core.backend_ndarray import array

    return array(arr.numpy().astype(dtype), dtype=str(dtype), device=arr.device)


def constant(arr: Any) -> Tensor:
    """Wrap an NDArray as a Tensor that needs no gradient (no copy: callers pass a
    fresh array, e.g. BatchNorm's new running statistics)."""
    return Tensor.make_const(arr)
