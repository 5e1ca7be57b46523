"""Basic tensor constructors: random draws, constants, one-hot.

Random draws use NumPy's global RNG on the host in the course's order and shapes,
computed in float64, cast once to ``dtype`` and then copied to the device, so one
seed gives the same values on every backend (docs/api.md section 4).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend_ndarray as nd
from ..autograd import Tensor
from ..backend_ndarray.dtypes import check_dtype, normalize_dtype
from ..device import one_hot_rows
from ..registry import resolve_device

_STORED_BOOL = "float32"  # backends hold floats: a "bool" request is stored as 0/1


_device = resolve_device  # None: the default device; a name; a device object as is


def _dtype(dtype: Any, device: Any) -> str:
    name = normalize_dtype(dtype)
    if name == "bool":
        name = _STORED_BOOL
    return check_dtype(name, device)


def _shape(shape: tuple) -> tuple[int, ...]:
    # rand(2, 3) as in the course; rand((2, 3)) accepted too
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return shape


def _from_host(host: np.ndarray, device: Any, dtype: Any, requires_grad: bool) -> Tensor:
    dev = _device(device)
    name = _dtype(dtype, dev)
    array = nd.array(np.asarray(host, dtype=name, order="C"), dtype=name, device=dev)
    return Tensor.make_const(array, requires_grad=requires_grad)


def rand(
    *shape: int,
    low: float = 0.0,
    high: float = 1.0,
    device: Any = None,
    dtype: Any = "float32",
    requires_grad: bool = False,
) -> Tensor:
    """Uniform in ``[low, high)``: ``np.random.rand(*shape) * (high - low) + low``."""
    return _from_host(np.random.rand(*_shape(shape)) * (high - low) + low, device, dtype, requires_grad)


def randn(
    *shape: int,
    mean: float = 0.0,
    std: float = 1.0,
    device: Any = None,
    dtype: Any = "float32",
    requires_grad: bool = False,
) -> Tensor:
    """Normal: ``np.random.randn(*shape) * std + mean``."""
    return _from_host(np.random.randn(*_shape(shape)) * std + mean, device, dtype, requires_grad)


def constant(
    *shape: int, c: float = 1.0, device: Any = None, dtype: Any = "float32", requires_grad: bool = False
) -> Tensor:
    """Every element equal to ``c`` (filled on the device; no host array)."""
    dev = _device(device)
    array = nd.full(_shape(shape), float(c), dtype=_dtype(dtype, dev), device=dev)
    return Tensor.make_const(array, requires_grad=requires_grad)


def ones(*shape: int, device: Any = None, dtype: Any = "float32", requires_grad: bool = False) -> Tensor:
    return constant(*shape, c=1.0, device=device, dtype=dtype, requires_grad=requires_grad)


def zeros(*shape: int, device: Any = None, dtype: Any = "float32", requires_grad: bool = False) -> Tensor:
    return constant(*shape, c=0.0, device=device, dtype=dtype, requires_grad=requires_grad)


def randb(*shape: int, p: float = 0.5, device: Any = None, dtype: Any = "bool", requires_grad: bool = False) -> Tensor:
    """Bernoulli(p) as 0/1: ``np.random.rand(*shape) <= p`` (stored as floats)."""
    return _from_host(np.random.rand(*_shape(shape)) <= p, device, dtype, requires_grad)


def one_hot(n: int, i: Any, device: Any = None, dtype: Any = "float32", requires_grad: bool = False) -> Tensor:
    """Rows of ``eye(n)`` indexed by ``i`` (float labels are cast to int)."""
    if isinstance(i, Tensor):
        i = i.numpy()
    elif isinstance(i, nd.NDArray):
        i = i.numpy()
    index = np.asarray(i).astype(np.int64)
    if index.size and (index.min() < 0 or index.max() >= n):  # NumPy would wrap -1 to the last class
        bad = index[(index < 0) | (index >= n)].flat[0]
        raise ValueError(f"one_hot: label {bad} is outside [0, {n}): labels must be class indices 0..{n - 1}")
    dev = _device(device)
    return _from_host(one_hot_rows(n, index, _dtype(dtype, dev)), dev, dtype, requires_grad)


def zeros_like(array: Any, *, device: Any = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros with ``array``'s shape, and its device and dtype unless given."""
    return zeros(
        *array.shape,
        device=device if device is not None else array.device,
        dtype=dtype if dtype is not None else array.dtype,
        requires_grad=requires_grad,
    )


def ones_like(array: Any, *, device: Any = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones with ``array``'s shape, and its device and dtype unless given."""
    return ones(
        *array.shape,
        device=device if device is not None else array.device,
        dtype=dtype if dtype is not None else array.dtype,
        requires_grad=requires_grad,
    )
