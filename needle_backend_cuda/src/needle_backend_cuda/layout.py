"""How a strided view reaches a CUDA kernel: the ``NdlLayout`` struct and the index width.

Views are validated and simplified by needle-core's ``needle_core.views`` (size-1
axes dropped, axes that walk memory contiguously merged, so most views reach the
kernel with 1-3 axes and a contiguous one becomes a plain copy); this module packs
the result for the kernels of ``cuda/layout.cu`` and ``cuda/reduce.cu``.
"""

from __future__ import annotations

MAX_DIMS = 8  # NDL_MAX_DIMS in prelude.cuh
INT32_LIMIT = 2**31  # views with fewer elements use the 32-bit index kernels


def pack_layout(shape: list[int], strides: list[int]) -> list[int]:
    """The 16 int64 fields of ``NdlLayout`` (shape[8], stride[8]), zero padded."""
    if len(shape) > MAX_DIMS:
        raise ValueError(
            f"strided view with {len(shape)} non-mergeable axes; the CUDA kernels take at most {MAX_DIMS}: "
            "compact() it in stages or reshape first"
        )
    pad = [0] * (MAX_DIMS - len(shape))
    return list(shape) + pad + list(strides) + pad
