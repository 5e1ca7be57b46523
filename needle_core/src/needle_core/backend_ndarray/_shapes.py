"""Shape/stride arithmetic shared by NDArray and its fallbacks (pure Python ints)."""

from __future__ import annotations

import operator
from collections.abc import Iterable

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


def normalize_axes(axis: int | Iterable[int] | None, ndim: int, shape: tuple | None = None) -> tuple[int, ...]:
    """``axis`` (None = all, an int, or an iterable) as sorted non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    try:
        items = (operator.index(axis),) if not isinstance(axis, Iterable) else tuple(axis)
        items = tuple(operator.index(ax) for ax in items)
    except TypeError:
        raise TypeError(
            f"axis must be None, an int or a tuple of ints, got {axis!r} ({type(axis).__name__})"
        ) from None
    out = set()
    for ax in items:
        if not -ndim <= ax < ndim:
            where = f" of shape {shape}" if shape is not None else ""
            raise ValueError(f"axis {ax} is out of range for an array{where} with {ndim} dimension(s)")
        out.add(ax % ndim)
    if len(out) != len(items):
        raise ValueError(f"repeated axis in {items}: give each axis once")
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
