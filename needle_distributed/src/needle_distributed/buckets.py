"""Bucketing: many tensors travel as a few large host buffers, one collective each.

Tensors are grouped by dtype in the order given and cut into buckets of at most
``cap_bytes`` (one tensor larger than the cap gets a bucket of its own). Each bucket owns
one persistent flat NumPy buffer, reused every step. With ``flags`` the buffer ends
with one element per tensor (1 where this rank holds a value for it) and one for the
averaging weight, so they travel in the same message as the values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_CAP_BYTES = 25 * 2**20


@dataclass
class Bucket:
    dtype: np.dtype
    slots: list[tuple[int, int, int]]  # (index into the tensor list, offset, number of elements)
    total: int  # elements holding tensor values; flags and the weight follow them
    buffer: np.ndarray

    def slice(self, slot: tuple[int, int, int]) -> np.ndarray:
        _, offset, size = slot
        return self.buffer[offset:offset + size]


def plan(specs: Sequence[tuple[tuple[int, ...], str]], cap_bytes: int = DEFAULT_CAP_BYTES,
         flags: bool = False) -> list[Bucket]:
    """Buckets for tensors of the given ``(shape, dtype)``, in order."""
    if cap_bytes <= 0:
        raise ValueError(f"bucket cap must be a positive number of bytes, got {cap_bytes}")
    open_: dict[str, list[tuple[int, int, int]]] = {}
    sizes: dict[str, int] = {}
    done: list[tuple[str, list[tuple[int, int, int]], int]] = []
    for index, (shape, dtype) in enumerate(specs):
        n = int(np.prod(shape, dtype=np.int64))
        item = np.dtype(dtype).itemsize
        slots, used = open_.setdefault(dtype, []), sizes.get(dtype, 0)
        if slots and (used + n) * item > cap_bytes:
            done.append((dtype, slots, used))
            slots = open_[dtype] = []
            used = 0
        slots.append((index, used, n))
        sizes[dtype] = used + n
    done.extend((dtype, slots, sizes[dtype]) for dtype, slots in open_.items() if slots)
    return [Bucket(np.dtype(dtype), slots, total, np.zeros(total + (len(slots) + 1 if flags else 0), np.dtype(dtype)))
            for dtype, slots, total in done]
