"""dtype rules of the NDArray layer (docs/api.md §3, docs/backends.md §1).

float32 is the dtype every device holds; a device lists any others in
``Device.dtypes`` (cpu_numpy also holds float64). Data arriving without an explicit
dtype converts silently to what the device can hold; an explicit dtype the device
cannot hold is an error. Mixed float32/float64 operands follow NumPy promotion.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..device import Device
    from .ndarray import NDArray

_NATIVE = ("float32", "float64")


def normalize_dtype(dtype: Any) -> str:
    """A dtype given as a string, a NumPy dtype or a type (``np.float32``) as its name."""
    if type(dtype) is str and dtype in _NATIVE:
        return dtype
    try:
        return np.dtype(dtype).name
    except TypeError:
        raise TypeError(f"expected a dtype such as 'float32' or np.float64, got {dtype!r}") from None


def check_dtype(dtype: str, device: Device) -> str:
    """``dtype`` if ``device`` can hold it, else a ValueError naming both."""
    if dtype not in device.dtypes:
        raise ValueError(
            f"device {str(device)!r} cannot hold dtype {dtype!r}: it holds {', '.join(device.dtypes)}. "
            "Ask for one of those, or pass no dtype to convert silently."
        )
    return dtype


def implicit_dtype(np_dtype: np.dtype, device: Device) -> str:
    """Storage dtype for host data given without a dtype: kept if it is a float
    dtype the device holds, float32 otherwise (ints, bools, float16, float64 on a
    float32-only device)."""
    name = np_dtype.name
    return name if name in _NATIVE and name in device.dtypes else "float32"


def astype(a: NDArray, dtype: Any) -> NDArray:
    """``a`` as an NDArray of ``dtype`` on the same device (``a`` itself if it already is)."""
    dtype = normalize_dtype(dtype)
    if dtype == a.dtype:
        return a
    from .ndarray import NDArray  # deferred: ndarray imports this module

    check_dtype(dtype, a.device)
    return NDArray(a.numpy().astype(dtype), device=a.device, dtype=dtype)


def promote(a: NDArray, b: NDArray) -> tuple[NDArray, NDArray]:
    """``a`` and ``b`` converted to their NumPy-promoted common dtype."""
    if a.dtype == b.dtype:
        return a, b
    common = np.promote_types(a.dtype, b.dtype).name
    return astype(a, common), astype(b, common)
