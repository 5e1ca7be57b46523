"""Host-side math of strided views and operand sizes, shared by the Python backends.

Part of the backend ABI (docs/backends.md §1, "Checking views and sizes"): the
numpy, opencl and cuda backends validate a kernel's ``(shape, strides, offset)``
views and its compact operands here, and simplify views before a launch here.
Every check raises ``ValueError`` (the one exception type for a view or an operand
the call cannot use), with the kernel's name, what was given and what was expected.

The cpu backend does the same in C++ (``plan_copy`` in needle_backend_cpu/csrc/strided.h): its
kernels take views without crossing into Python, so it keeps the axis-merging rule
in C++; the conformance suite checks every backend's views against NumPy.

Nothing here is on a per-element path; each function costs a few Python operations
per axis.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "check_class_labels", "check_sizes", "check_view", "coalesce", "compact_strides", "is_contiguous", "view_size",
]


def view_size(shape: Sequence[int]) -> int:
    """The number of elements of a view of ``shape`` (1 for ``()``)."""
    n = 1
    for d in shape:
        n *= int(d)
    return n


def compact_strides(shape: Sequence[int]) -> tuple[int, ...]:
    """Row-major element strides of a compact view of ``shape`` (``()`` for ``()``)."""
    out, acc = [], 1
    for n in reversed(shape):
        out.append(acc)
        acc *= int(n)
    return tuple(reversed(out))


def coalesce(shape: Sequence[int], *strides: Sequence[int]) -> tuple[list[int], ...]:
    """``(shape, strides, ...)`` of the same views with as few axes as possible.

    Size-1 axes are dropped, and axis ``i`` merges into axis ``i + 1`` when it steps
    through memory as their union would (``strides[i] == strides[i + 1] * shape[i + 1]``)
    in every one of the given stride tuples (one view, or several views of one shape
    walked together, e.g. both operands of ``ewise_strided``). Row-major element order
    is preserved, so a kernel walking the result visits the same elements in the same
    order. A view of one element comes back with no axes (``([], [])``).

    ``coalesce((2, 3, 4), (12, 4, 1)) == ([24], [1])``.
    """
    for s in strides:
        if len(s) != len(shape):
            raise ValueError(f"shape {tuple(shape)} and strides {tuple(s)} must have the same length")
    out_shape: list[int] = []
    out_strides: list[list[int]] = [[] for _ in strides]
    for axis, n in enumerate(shape):
        n = int(n)
        if n == 1:
            continue
        steps = [int(s[axis]) for s in strides]
        if out_shape and all(kept[-1] == step * n for kept, step in zip(out_strides, steps, strict=True)):
            out_shape[-1] *= n
            for kept, step in zip(out_strides, steps, strict=True):
                kept[-1] = step
        else:
            out_shape.append(n)
            for kept, step in zip(out_strides, steps, strict=True):
                kept.append(step)
    return (out_shape, *out_strides)


def is_contiguous(shape: Sequence[int], strides: Sequence[int]) -> bool:
    """Whether a *coalesced* view is one contiguous run of memory (a plain copy)."""
    return len(shape) == 0 or (len(shape) == 1 and strides[0] == 1)


def check_view(buffer_size: int, shape: Sequence[int], strides: Sequence[int], offset: int, what: str) -> int:
    """The number of elements of the view; raises ``ValueError`` unless it lies inside the buffer.

    A view is valid when ``shape`` and ``strides`` have one entry per axis, shape,
    strides and offset are non-negative (core compacts flipped views before they reach
    a kernel, docs/backends.md §1), and its last element ``offset + sum((shape[k] - 1)
    * strides[k])`` is below ``buffer_size``. An empty view touches nothing and is
    always valid.
    """
    if len(shape) != len(strides):
        raise ValueError(f"{what}: shape {tuple(shape)} and strides {tuple(strides)} must have the same length")
    if any(n < 0 for n in shape):
        raise ValueError(f"{what}: expected a non-negative shape, got {tuple(shape)}")
    size = view_size(shape)
    if size == 0:
        return 0
    if offset < 0 or any(s < 0 for s in strides):
        raise ValueError(
            f"{what}: expected non-negative strides and offset, got shape={tuple(shape)} strides={tuple(strides)} "
            f"offset={offset}; flipped views are compacted by needle-core before they reach kernels"
        )
    last = offset + sum((int(n) - 1) * int(s) for n, s in zip(shape, strides, strict=True))
    if last >= buffer_size:
        raise ValueError(
            f"{what}: the view shape={tuple(shape)} strides={tuple(strides)} offset={offset} reaches element "
            f"{last}, but the buffer has {buffer_size} elements; expected a view inside the buffer"
        )
    return size


def check_sizes(what: str, size: int, **operands: Any) -> None:
    """Raise ``ValueError`` unless every named operand (anything with ``.size``) holds exactly ``size`` elements.

    A compact operand holds exactly the elements the call names (docs/backends.md §1):
    a larger buffer is as wrong as a smaller one, since it means the caller mixed up
    sizes. ``check_sizes("sgd_update", n, w=w, g=g, u=u)``.
    """
    wrong = [f"{name} has {op.size}" for name, op in operands.items() if op.size != size]
    if wrong:
        raise ValueError(
            f"{what}: every operand must be a compact buffer of exactly {size} elements, but {', '.join(wrong)}; "
            "compact views and allocate outputs of the result's size"
        )


def check_class_labels(what: str, logits: Any, labels: Any, rows: int, classes: int,
                       read_labels: Callable[[], Any]) -> None:
    """Raise ``ValueError`` unless ``logits`` holds ``rows * classes`` elements (``classes
    >= 1``), ``labels`` holds ``rows``, and every label is a whole class number in
    ``[0, classes)`` (the softmax cross-entropy kernels' contract, docs/backends.md §3).
    ``read_labels()`` gives the labels as a NumPy array; it is called only when the sizes
    fit and ``rows > 0``."""
    if rows < 0 or classes < 1 or logits.size != rows * classes or labels.size != rows:
        raise ValueError(f"{what}: expected logits of rows * classes and labels of rows elements for rows={rows}, "
                         f"classes={classes} (classes >= 1), got buffers of {logits.size} and {labels.size}")
    if rows:
        y = read_labels()
        bad = ~((y >= 0) & (y < classes) & (y == np.floor(y)))
        if bad.any():
            r = int(np.argmax(bad))
            raise ValueError(f"{what}: labels[{r}] = {y[r]} is not a class number in [0, {classes})")
