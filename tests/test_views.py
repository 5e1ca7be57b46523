"""needle_core.views: the view math and size checks the Python backends share.

The results are compared with brute-force element offsets of NumPy views, so a
merge that changes which elements a view visits, or their order, fails here.
"""

from __future__ import annotations

import numpy as np
import pytest

from needle_core.views import check_sizes, check_view, coalesce, is_contiguous


def _offsets(shape, strides, offset):
    """Element offsets of a view in row-major order, by brute force."""
    idx = np.indices(shape).reshape(len(shape), -1) if shape else np.zeros((0, 1), dtype=int)
    return offset + (np.asarray(strides, dtype=np.int64)[:, None] * idx).sum(axis=0)


def _random_view(rng, arr=None):
    """A random transpose/slice/broadcast of ``arr`` (or of a fresh array): (base, view, strides, offset)."""
    if arr is None:
        ndim = int(rng.integers(1, 6))
        base = [int(rng.integers(1, 5)) for _ in range(ndim)]
        arr = np.arange(int(np.prod(base)) * 8).reshape([*base[:-1], base[-1] * 8])
    view = arr
    if rng.random() < 0.5:
        view = view.transpose(rng.permutation(view.ndim))
    slices = tuple(slice(int(rng.integers(0, 2)), None, int(rng.integers(1, 3))) for _ in range(view.ndim))
    view = view[slices]
    if rng.random() < 0.3:
        view = np.broadcast_to(view[:1], (3, *view.shape[1:]))
    strides = tuple(s // view.itemsize for s in view.strides)
    offset = (view.__array_interface__["data"][0] - arr.__array_interface__["data"][0]) // arr.itemsize
    return arr, view, strides, offset


@pytest.mark.parametrize("seed", range(40))
def test_coalesce_keeps_the_elements_and_their_order(seed):
    rng = np.random.default_rng(seed)
    arr, view, strides, offset = _random_view(rng)
    cshape, cstrides = coalesce(view.shape, strides)
    assert len(cshape) <= view.ndim and 1 not in cshape
    np.testing.assert_array_equal(arr.reshape(-1)[_offsets(cshape, cstrides, offset)], view.reshape(-1))


def _view_of_shape(rng, shape):
    """(compact base, a view of it with ``shape``): compact, transposed, every other element, or broadcast."""
    n, kind = int(np.prod(shape)), int(rng.integers(0, 4))
    if kind == 0:
        base = np.arange(n).reshape(shape)
        return base, base
    if kind == 1:
        perm = rng.permutation(len(shape))
        base = np.arange(n).reshape([shape[p] for p in perm])
        return base, base.transpose(np.argsort(perm))
    if kind == 2:
        base = np.arange(2 * n).reshape(*shape, 2)
        return base, base[..., 0]
    base = np.arange(int(np.prod(shape[1:]))).reshape(shape[1:])
    return base, np.broadcast_to(base, shape)


@pytest.mark.parametrize("seed", range(30))
def test_coalesce_of_two_views_keeps_both_walks(seed):
    """Two views of one shape (ewise_strided's operands) merge an axis only where both can."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(rng.integers(1, 5)) for _ in range(int(rng.integers(1, 5))))
    (base_a, a), (base_b, b) = _view_of_shape(rng, shape), _view_of_shape(rng, shape)
    strides_a = tuple(s // a.itemsize for s in a.strides)
    strides_b = tuple(s // b.itemsize for s in b.strides)
    cshape, ca, cb = coalesce(shape, strides_a, strides_b)
    np.testing.assert_array_equal(base_a.reshape(-1)[_offsets(cshape, ca, 0)], a.reshape(-1))
    np.testing.assert_array_equal(base_b.reshape(-1)[_offsets(cshape, cb, 0)], b.reshape(-1))


def test_coalesce_merges_contiguous_axes_and_drops_unit_axes():
    assert coalesce((2, 3, 4), (12, 4, 1)) == ([24], [1])
    assert coalesce((3, 1, 4), (1, 99, 3)) == ([3, 4], [1, 3])
    assert is_contiguous(*coalesce((1, 5, 1), (99, 1, 7)))
    assert coalesce((4, 3), (1, 4)) == ([4, 3], [1, 4])  # transposed: nothing to merge
    assert coalesce((1, 1), (5, 7)) == ([], [])  # one element: no axes
    assert coalesce((), ()) == ([], [])
    # two views: (2, 3) merges in a (compact) but not in b (a broadcast row)
    assert coalesce((2, 3), (3, 1), (0, 1)) == ([2, 3], [3, 1], [0, 1])
    assert coalesce((2, 3), (3, 1), (6, 2)) == ([6], [1], [2])
    with pytest.raises(ValueError, match="same length"):
        coalesce((2, 3), (1,))


def test_check_view_counts_elements_and_refuses_views_outside_the_buffer():
    assert check_view(12, (3, 4), (4, 1), 0, "t") == 12
    assert check_view(12, (3, 4), (0, 0), 11, "t") == 12  # a broadcast of the last element
    assert check_view(0, (0, 4), (4, 1), 5, "t") == 0  # empty views touch nothing
    with pytest.raises(ValueError, match=r"^compact: the view .* reaches element 12, but the buffer has 12"):
        check_view(12, (3, 4), (4, 1), 1, "compact")
    with pytest.raises(ValueError, match="non-negative strides and offset"):
        check_view(12, (4,), (-1,), 3, "t")
    with pytest.raises(ValueError, match="non-negative strides and offset"):
        check_view(12, (4,), (1,), -1, "t")
    with pytest.raises(ValueError, match="non-negative shape"):
        check_view(12, (-1, 4), (4, 1), 0, "t")
    with pytest.raises(ValueError, match="same length"):
        check_view(12, (3, 4), (1,), 0, "t")


def test_check_sizes_refuses_smaller_and_larger_operands_naming_each():
    check_sizes("k", 8, a=np.zeros(8), out=np.zeros(8))
    with pytest.raises(ValueError, match=r"^k: every operand must be a compact buffer of exactly 8 elements, "
                                         r"but a has 4, out has 12;"):
        check_sizes("k", 8, a=np.zeros(4), b=np.zeros(8), out=np.zeros(12))
