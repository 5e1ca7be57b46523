"""Shape/stride arithmetic shared by NDArray and its fallbacks (pure Python ints)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

_COMPACT_STRIDES: dict[tuple[int, ...], tuple[int, ...]] = {}


def compact_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Row-major element strides of ``shape`` (cached: every new array asks)."""
    strides = _COMPACT_STRIDES.get(shape)
    if strides is None:
        acc, out = 1, []
        for n in reversed(shape):
            out.append(acc)
            acc *= n
        strides = tuple(reversed(out))
        if len(_COMPACT_STRIDES) < 4096:  # bounded: shapes in a program are few
            _COMPACT_STRIDES[shape] = strides
    return strides


def is_compact_layout(shape: tuple, strides: tuple, offset: int, size: int, buffer_size: int) -> bool:
    """A whole buffer in row-major order (strides of length-1 axes do not matter,
    as for NumPy's C-contiguity flag)."""
    if offset != 0 or size != buffer_size:
        return False
    acc = 1
    for n, s in zip(reversed(shape), reversed(strides), strict=True):
        if n != 1 and s != acc:
            return False
        acc *= n
    return True


def normalize_axis(axis: Any, ndim: int, what: str, shape: tuple | None = None) -> int:
    """One axis as a non-negative int below ``ndim``; errors name ``what`` and the value."""
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"{what}: axes must be ints (None, an int or a tuple of ints), got {axis!r}")
    if not -ndim <= axis < ndim:
        where = f"an array of shape {shape}" if shape is not None else f"a {ndim}-D tensor"
        raise ValueError(f"{what}: axis {axis} is out of range for {where} (valid: {-ndim}..{ndim - 1})")
    return int(axis) % ndim


# A program uses few distinct (axes, ndim) pairs: a bounded memo replaces the loop.
_AXES_MEMO: dict[tuple[Any, int], tuple[int, ...]] = {}


def normalize_axes(axes: Any, ndim: int, what: str = "axis", shape: tuple | None = None) -> tuple[int, ...]:
    """``None`` -> every axis; an int or a sequence of ints -> sorted, non-negative, unique
    (the one rule for NDArray reductions and the Tensor ops)."""
    kind = type(axes)
    if kind is tuple or kind is int or axes is None:  # hashable: memoised
        key = (axes, ndim)
        out = _AXES_MEMO.get(key)
        if out is None:
            out = _normalize_axes(axes, ndim, what, shape)
            if (kind is int or all(type(ax) is int for ax in axes or ())) and len(_AXES_MEMO) < 4096:
                _AXES_MEMO[key] = out  # (not bools/NumPy ints, whose errors differ)
        return out
    return _normalize_axes(axes, ndim, what, shape)


def _normalize_axes(axes: Any, ndim: int, what: str, shape: tuple | None) -> tuple[int, ...]:
    if axes is None:
        return tuple(range(ndim))
    if isinstance(axes, (int, np.integer)) or not isinstance(axes, Iterable):
        axes = (axes,)  # a lone non-int (axes=1.5) is then named by normalize_axis
    out = tuple(normalize_axis(ax, ndim, what, shape) for ax in axes)
    if len(set(out)) != len(out):
        raise ValueError(f"{what}: repeated axis in {tuple(axes)!r}; give each axis once")
    return tuple(sorted(out))


def check_shape(shape: Iterable[int]) -> tuple[int, ...]:
    """``shape`` as a tuple of non-negative ints, or a ValueError saying why not."""
    try:
        out = tuple(int(n) for n in shape)
    except TypeError:
        raise TypeError(f"a shape is a tuple of ints, got {shape!r}") from None
    if any(n < 0 for n in out):
        raise ValueError(f"shape {out} has a negative dimension")
    return out
