"""Host-side index math for strided views (pure Python, no pycuda).

Views are simplified before a launch: size-1 axes are dropped and adjacent axes
that walk memory contiguously are merged, so most views reach the kernel with 1-3
axes (fewer div/mods per element) and a contiguous one becomes a plain copy.
"""

from __future__ import annotations

from math import prod

MAX_DIMS = 8  # NDL_MAX_DIMS in prelude.cuh
INT32_LIMIT = 2**31  # views with fewer elements use the 32-bit index kernels


def coalesce(shape: tuple[int, ...], strides: tuple[int, ...]) -> tuple[list[int], list[int]]:
    """An equivalent (shape, strides) with size-1 axes dropped and mergeable axes merged.

    Row-major order of the elements is preserved: axis ``i`` merges into ``i+1`` when
    ``strides[i] == strides[i+1] * shape[i+1]``.
    """
    if len(shape) != len(strides):
        raise ValueError(f"shape {shape} and strides {strides} must have the same length")
    dims = [(int(s), int(t)) for s, t in zip(shape, strides, strict=True) if s != 1]
    out_shape: list[int] = []
    out_strides: list[int] = []
    for s, t in dims:
        if out_shape and out_strides[-1] == t * s:
            out_shape[-1] *= s
            out_strides[-1] = t
        else:
            out_shape.append(s)
            out_strides.append(t)
    return out_shape, out_strides


def is_contiguous(shape: list[int], strides: list[int]) -> bool:
    """A coalesced view that is one contiguous run of memory."""
    return len(shape) == 0 or (len(shape) == 1 and strides[0] == 1)


def span(shape: tuple[int, ...] | list[int], strides: tuple[int, ...] | list[int], offset: int) -> tuple[int, int]:
    """The lowest and highest element index a non-empty view touches."""
    lo = hi = offset
    for s, t in zip(shape, strides, strict=True):
        if t >= 0:
            hi += (s - 1) * t
        else:
            lo += (s - 1) * t
    return lo, hi


def check_view(buffer_size: int, shape, strides, offset: int, what: str) -> int:
    """Raise unless the view lies inside a buffer of ``buffer_size`` elements; return prod(shape)."""
    n = prod(shape)
    if n == 0:
        return 0
    lo, hi = span(shape, strides, offset)
    if lo < 0 or hi >= buffer_size:
        raise IndexError(
            f"{what}: view (shape={tuple(shape)}, strides={tuple(strides)}, offset={offset}) reaches elements "
            f"{lo}..{hi} of a buffer of {buffer_size}; expected a view inside the buffer"
        )
    return n


def pack_layout(shape: list[int], strides: list[int]) -> list[int]:
    """The 16 int64 fields of ``NdlLayout`` (shape[8], stride[8]), zero padded."""
    if len(shape) > MAX_DIMS:
        raise ValueError(
            f"strided view with {len(shape)} non-mergeable axes; the CUDA kernels take at most {MAX_DIMS}: "
            "compact() it in stages or reshape first"
        )
    pad = [0] * (MAX_DIMS - len(shape))
    return list(shape) + pad + list(strides) + pad
