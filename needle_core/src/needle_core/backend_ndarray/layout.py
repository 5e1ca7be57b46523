"""Memory orders of views: which permutation of a view's axes is row-major.

Elementwise operations on views that cover a whole buffer in some axis order (the NCHW
view of an NHWC convolution output, a transposed matrix) compute in that order and
return the same layout, as NumPy's ufuncs do, instead of copying the operands into
row-major order first: a chain of such operations then never copies.
"""

from __future__ import annotations

from ._shapes import is_compact_layout

_ORDER_MEMO: dict[tuple[tuple[int, ...], tuple[int, ...]], tuple[int, ...] | None] = {}
_MEMO_LIMIT = 4096


def dense_order(shape: tuple[int, ...], strides: tuple[int, ...]) -> tuple[int, ...] | None:
    """The axis order ``p`` for which ``permute(p)`` of a view with this shape and these
    strides is row-major with no gaps; None when there is none (a broadcast axis, gaps).
    The caller checks that the view starts at offset 0 and spans its whole buffer."""
    key = (shape, strides)
    try:
        return _ORDER_MEMO[key]
    except KeyError:
        pass
    order: tuple[int, ...] | None = tuple(sorted(range(len(shape)), key=lambda i: -strides[i]))
    size = 1
    for n in shape:
        size *= n
    perm_shape = tuple(shape[i] for i in order)
    perm_strides = tuple(strides[i] for i in order)
    if not size or not is_compact_layout(perm_shape, perm_strides, 0, size, size):
        order = None
    if len(_ORDER_MEMO) >= _MEMO_LIMIT:
        _ORDER_MEMO.clear()
    _ORDER_MEMO[key] = order
    return order

