"""Strided views on the host side: validate, simplify, pack as the kernels' ``view_t``."""

from __future__ import annotations

import struct

MAX_DIMS = 8  # must match cl/prelude.cl


def simplify(shape: tuple[int, ...], strides: tuple[int, ...]) -> tuple[list[int], list[int]]:
    """The same element order with fewer axes: size-1 axes dropped, and an axis merged
    into the next one when they step through memory as one (fewer divisions per element)."""
    dims = [(int(n), int(s)) for n, s in zip(shape, strides, strict=True) if n != 1]
    merged: list[list[int]] = []
    for n, s in dims:
        if merged and merged[-1][1] == s * n:
            merged[-1] = [merged[-1][0] * n, s]
        else:
            merged.append([n, s])
    return [n for n, _ in merged] or [1], [s for _, s in merged] or [1]


def simplify_pair(
    shape: tuple[int, ...], a_strides: tuple[int, ...], b_strides: tuple[int, ...]
) -> tuple[list[int], list[int], list[int]]:
    """``simplify`` for two views of one shape: an axis merges into the next only when it
    does so in both views."""
    dims = [(int(n), int(sa), int(sb)) for n, sa, sb in zip(shape, a_strides, b_strides, strict=True) if n != 1]
    merged: list[list[int]] = []
    for n, sa, sb in dims:
        if merged and merged[-1][1] == sa * n and merged[-1][2] == sb * n:
            merged[-1] = [merged[-1][0] * n, sa, sb]
        else:
            merged.append([n, sa, sb])
    if not merged:
        return [1], [1], [1]
    return [m[0] for m in merged], [m[1] for m in merged], [m[2] for m in merged]


def check_view(buffer_size: int, shape: tuple[int, ...], strides: tuple[int, ...], offset: int, what: str) -> int:
    """Number of elements of the view; raises if it would leave the buffer. One pass:
    it runs for every strided operand of every op."""
    if len(shape) != len(strides):
        raise ValueError(f"{what}: shape {shape} and strides {strides} must have the same length")
    size, last, negative = 1, offset, offset < 0
    for n, s in zip(shape, strides, strict=True):
        size *= n
        last += (n - 1) * s
        if n < 0 or s < 0:
            negative = True
    if size == 0:
        return 0
    if negative:
        raise ValueError(
            f"{what}: expected non-negative shape, strides and offset, got shape={shape} strides={strides} "
            f"offset={offset}; flip views are compacted by needle-core before reaching kernels"
        )
    if last >= buffer_size:
        raise ValueError(
            f"{what}: the view shape={shape} strides={strides} offset={offset} reaches element {last}, "
            f"but the buffer has {buffer_size} elements"
        )
    return int(size)


_VIEW_T = struct.Struct(f"={2 + 2 * MAX_DIMS}q")  # host byte order, as kernel arguments are


def pack(shape: list[int], strides: list[int], offset: int) -> bytes:
    """The ``view_t`` struct bytes: ndim, offset, shape[MAX_DIMS], strides[MAX_DIMS] (int64)."""
    ndim = len(shape)
    if ndim > MAX_DIMS:
        raise ValueError(
            f"the opencl kernels address views of at most {MAX_DIMS} non-mergeable axes, got {ndim} "
            f"(shape {shape}); compact in steps or reshape"
        )
    pad = (0,) * (MAX_DIMS - ndim)
    return _VIEW_T.pack(ndim, offset, *shape, *pad, *strides, *pad)
