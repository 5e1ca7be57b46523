"""Strided views on the host side: pack them as the kernels' ``view_t``.

Validation and axis merging are needle-core's (``needle_core.views``, shared with
the other Python backends); ``check_view`` is re-exported for the kernels here.
"""

from __future__ import annotations

import struct

from needle_core.views import check_view, coalesce

__all__ = ["MAX_DIMS", "check_view", "pack", "simplify", "simplify_pair"]

MAX_DIMS = 8  # must match cl/prelude.cl


def simplify(shape: tuple[int, ...], strides: tuple[int, ...]) -> tuple[list[int], list[int]]:
    """``needle_core.views.coalesce``, keeping at least one axis (the kernels index ``dims[-1]``)."""
    dims, steps = coalesce(shape, strides)
    return dims or [1], steps or [1]


def simplify_pair(
    shape: tuple[int, ...], a_strides: tuple[int, ...], b_strides: tuple[int, ...]
) -> tuple[list[int], list[int], list[int]]:
    """``simplify`` for two views of one shape: an axis merges only when it does in both."""
    dims, sa, sb = coalesce(shape, a_strides, b_strides)
    return (dims, sa, sb) if dims else ([1], [1], [1])


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
