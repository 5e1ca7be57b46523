"""Shape and layout ops: transpose, permute, reshape, broadcast_to, flip, dilate,
undilate, stack, split, and the zero-padding/cropping pair used by conv's gradient."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .. import backend_ndarray as nd
from ..autograd import Tensor, TensorOp, TensorTuple, TensorTupleOp
from ..backend_ndarray import NDArray
from ..backend_ndarray._shapes import check_shape, compact_strides
from .common import AxesOp, _remember, broadcast_array, check_same_device, normalize_axis, unbroadcast

# memo tables (see common.py): valid (op shape, input shape) pairs only
_RESHAPE_MEMO: dict[tuple[tuple[int, ...], tuple[int, ...]], tuple[int, ...]] = {}
_BROADCAST_TARGET: dict[tuple[tuple[int, ...], tuple[int, ...]], tuple[int, ...]] = {}
_LAST_TWO_SWAPPED: dict[int, tuple[int, ...]] = {}  # ndim -> the permutation of transpose(axes=None)


class Transpose(TensorOp):
    """Swap two axes: the last two by default, ``axes=(i, j)`` otherwise."""

    def __init__(self, axes: tuple[int, int] | None = None) -> None:
        if axes is not None and len(tuple(axes)) != 2:
            raise ValueError(f"transpose: axes must be a pair (i, j) or None, got {axes!r}")
        self.axes = None if axes is None else tuple(axes)

    def _perm(self, ndim: int) -> list[int]:
        if self.axes is None:
            if ndim < 2:
                raise ValueError(f"transpose: axes=None swaps the last two axes; a {ndim}-D tensor has fewer")
            i, j = ndim - 2, ndim - 1
        else:
            i, j = (normalize_axis(ax, ndim, "transpose") for ax in self.axes)
        perm = list(range(ndim))
        perm[i], perm[j] = perm[j], perm[i]
        return perm

    def compute(self, a: NDArray) -> NDArray:
        if self.axes is not None:
            return a.permute(tuple(self._perm(len(a.shape))))
        ndim = len(a.shape)
        perm = _LAST_TWO_SWAPPED.get(ndim)  # matmul's backward transposes every weight: no per-call list work
        if perm is None:
            perm = _LAST_TWO_SWAPPED[ndim] = tuple(self._perm(ndim))
        return a.permute(perm)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return Transpose(self.axes)(out_grad)  # a swap is its own inverse


def transpose(a: Tensor, axes: tuple[int, int] | None = None) -> Tensor:
    return Transpose(axes)(a)


_PERMUTATIONS: dict[tuple[tuple[int, ...], int], tuple[int, ...]] = {}  # (axes, ndim) -> validated permutation


class Permute(TensorOp):
    """Reorder all axes (``axes`` is a permutation, as ``np.transpose``)."""

    def __init__(self, axes: Sequence[int]) -> None:
        self.axes = tuple(axes)

    def compute(self, a: NDArray) -> NDArray:
        perm = _PERMUTATIONS.get((self.axes, a.ndim))  # nn.Conv permutes twice per call: checked once
        if perm is None:
            perm = tuple(normalize_axis(ax, a.ndim, "permute") for ax in self.axes)
            if sorted(perm) != list(range(a.ndim)):
                raise ValueError(f"permute: {self.axes} is not a permutation of the axes of a {a.ndim}-D tensor")
            if len(_PERMUTATIONS) < 1024:  # bounded: a program uses few
                _PERMUTATIONS[(self.axes, a.ndim)] = perm
        return a.permute(perm)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        ndim = len(self.axes)
        inverse = [0] * ndim
        for i, ax in enumerate(self.axes):
            inverse[ax % ndim] = i
        return Permute(inverse)(out_grad)


def permute(a: Tensor, axes: Sequence[int]) -> Tensor:
    return Permute(axes)(a)


class Reshape(TensorOp):
    def __init__(self, shape: Sequence[int]) -> None:
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)

    def _resolve(self, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        size = math.prod(in_shape)
        shape = self.shape
        if -1 in shape:  # one unknown dimension, as NumPy
            known = math.prod(n for n in shape if n != -1)
            if shape.count(-1) > 1 or known == 0 or size % known:
                raise ValueError(f"reshape: cannot reshape a tensor of shape {in_shape} into {shape}")
            shape = tuple(size // known if n == -1 else n for n in shape)
        if math.prod(shape) != size or any(n < 0 for n in shape):
            raise ValueError(
                f"reshape: cannot reshape a tensor of shape {in_shape} ({size} elements) into {shape} "
                f"({math.prod(shape)} elements); the element counts must match"
            )
        return shape

    def compute(self, a: NDArray) -> NDArray:
        key = (self.shape, a.shape)
        shape = _RESHAPE_MEMO.get(key)
        if shape is None:
            shape = check_shape(self._resolve(a.shape))  # plain ints, as NDArray.reshape makes them
            _remember(_RESHAPE_MEMO, key, shape)
        if a._compact:  # a view with the new compact strides (what NDArray.reshape checks and builds)
            return a._view(shape, compact_strides(shape), 0, True)
        return a.compact().reshape(shape)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return reshape(out_grad, node.inputs[0].shape)


def reshape(a: Tensor, shape: Sequence[int]) -> Tensor:
    return Reshape(shape)(a)


class BroadcastTo(TensorOp):
    """NumPy broadcasting to ``shape`` (new leading axes allowed)."""

    def __init__(self, shape: Sequence[int]) -> None:
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)

    def compute(self, a: NDArray) -> NDArray:
        shape, in_shape = self.shape, a.shape
        target = _BROADCAST_TARGET.get((in_shape, shape))
        if target is None:
            ok = len(shape) >= len(in_shape) and all(
                n == m or n == 1 for n, m in zip(in_shape, shape[len(shape) - len(in_shape) :], strict=False)
            )
            if not ok:
                raise ValueError(
                    f"broadcast_to: cannot broadcast shape {in_shape} to {shape} "
                    "(each trailing dimension must be equal or 1)"
                )
            target = a.broadcast_to(check_shape(shape)[len(shape) - len(in_shape) :]).shape  # NDArray's checks
            target = check_shape(shape[: len(shape) - len(in_shape)]) + target
            _remember(_BROADCAST_TARGET, (in_shape, shape), target)
        return broadcast_array(a, target)  # one strided view (stride 0 on new/stretched axes)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return unbroadcast(out_grad, node.inputs[0].shape)


def broadcast_to(a: Tensor, shape: Sequence[int]) -> Tensor:
    return BroadcastTo(shape)(a)


class Flip(AxesOp):
    what = "flip"

    def compute(self, a: NDArray) -> NDArray:
        axes = self._axes(a.ndim)
        return a.flip(axes) if axes else a + 0.0

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return flip(out_grad, self.axes)


def flip(a: Tensor, axes: Any) -> Tensor:
    return Flip(axes)(a)


def _strided_index(shape: tuple[int, ...], axes: tuple[int, ...], step: int) -> tuple[slice, ...]:
    return tuple(slice(0, n, step) if i in axes else slice(0, n, 1) for i, n in enumerate(shape))


class _Dilation(AxesOp):
    """An op with ``axes`` and a ``dilation`` (zeros between elements) >= 0."""

    def __init__(self, axes: Any, dilation: int) -> None:
        if dilation < 0:
            raise ValueError(f"{self.what}: dilation must be >= 0, got {dilation}")
        self.axes = axes
        self.dilation = int(dilation)


class Dilate(_Dilation):
    """Insert ``dilation`` zeros after every element along each of ``axes``."""

    what = "dilate"

    def compute(self, a: NDArray) -> NDArray:
        axes = self._axes(a.ndim)
        step = self.dilation + 1
        shape = tuple(n * step if i in axes else n for i, n in enumerate(a.shape))
        out = nd.full(shape, 0.0, dtype=a.dtype, device=a.device)
        out[_strided_index(shape, axes, step)] = a.compact()
        return out

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return undilate(out_grad, self.axes, self.dilation)


def dilate(a: Tensor, axes: Any, dilation: int) -> Tensor:
    return Dilate(axes, dilation)(a)


class UnDilate(_Dilation):
    """Keep every ``dilation + 1``-th element along each of ``axes`` (inverse of dilate)."""

    what = "undilate"

    def compute(self, a: NDArray) -> NDArray:
        axes = self._axes(a.ndim)
        return a[_strided_index(a.shape, axes, self.dilation + 1)].compact()

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        # dilate then pad back any tail that undilate dropped (size not a multiple of step)
        in_shape = node.inputs[0].shape
        grad = dilate(out_grad, self.axes, self.dilation)
        if grad.shape != in_shape:
            grad = crop(grad, tuple((0, n) for n in in_shape))
        return grad


def undilate(a: Tensor, axes: Any, dilation: int) -> Tensor:
    return UnDilate(axes, dilation)(a)


class Pad(TensorOp):
    """Zero padding: ``widths`` holds one ``(before, after)`` pair per axis."""

    def __init__(self, widths: Sequence[tuple[int, int]]) -> None:
        self.widths = tuple((int(b), int(e)) for b, e in widths)

    def compute(self, a: NDArray) -> NDArray:
        if len(self.widths) != a.ndim:
            raise ValueError(f"pad: need one (before, after) pair per axis of shape {a.shape}, got {self.widths}")
        return a.pad(self.widths)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return crop(out_grad, tuple((b, b + n) for (b, _), n in zip(self.widths, node.inputs[0].shape, strict=False)))


def pad(a: Tensor, widths: Sequence[tuple[int, int]]) -> Tensor:
    return Pad(widths)(a)


class Crop(TensorOp):
    """The block ``[start, stop)`` along every axis (``bounds``: one pair per axis)."""

    def __init__(self, bounds: Sequence[tuple[int, int]]) -> None:
        self.bounds = tuple((int(b), int(e)) for b, e in bounds)

    def compute(self, a: NDArray) -> NDArray:
        if len(self.bounds) != a.ndim or any(
            not 0 <= b <= e <= n for (b, e), n in zip(self.bounds, a.shape, strict=False)
        ):
            raise ValueError(f"crop: bounds {self.bounds} do not fit inside shape {a.shape}")
        return a[tuple(slice(b, e, 1) for b, e in self.bounds)].compact()

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return pad(out_grad, tuple((b, n - e) for (b, e), n in zip(self.bounds, node.inputs[0].shape, strict=False)))


def crop(a: Tensor, bounds: Sequence[tuple[int, int]]) -> Tensor:
    return Crop(bounds)(a)


class Stack(TensorOp):
    """Stack equal-shape tensors along a new axis ``axis``."""

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def compute(self, args: tuple[NDArray, ...]) -> NDArray:
        if len(args) == 0:
            raise ValueError("stack: need at least one tensor")
        first = args[0]
        shapes = [x.shape for x in args]
        if any(s != first.shape for s in shapes):
            raise ValueError(f"stack: all tensors must have the same shape, got {shapes}")
        for x in args[1:]:
            check_same_device(first, x, "stack")
        dtype = "float64" if any(x.dtype == "float64" for x in args) else first.dtype
        axis = normalize_axis(self.axis, first.ndim + 1, "stack")
        shape = first.shape[:axis] + (len(args),) + first.shape[axis:]
        out = nd.empty(shape, dtype=dtype, device=first.device)
        index = [slice(0, n, 1) for n in shape]
        for i, x in enumerate(args):
            index[axis] = slice(i, i + 1, 1)
            out[tuple(index)] = (x if x.dtype == dtype else nd.astype(x, dtype)).compact()
        return out

    def gradient(self, out_grad: Tensor, node: TensorTuple) -> TensorTuple:
        return split(out_grad, self.axis)


def stack(args: Sequence[Tensor] | TensorTuple, axis: int) -> Tensor:
    from .tuples import make_tuple

    return Stack(axis)(args if isinstance(args, TensorTuple) else make_tuple(*args))


class Split(TensorTupleOp):
    """The slices along ``axis``, each with that axis removed."""

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def compute(self, a: NDArray) -> tuple[NDArray, ...]:
        axis = normalize_axis(self.axis, a.ndim, "split")
        shape = a.shape[:axis] + a.shape[axis + 1 :]
        index = [slice(0, n, 1) for n in a.shape]
        out = []
        for i in range(a.shape[axis]):
            index[axis] = slice(i, i + 1, 1)
            out.append(a[tuple(index)].compact().reshape(shape))
        return tuple(out)

    def gradient(self, out_grad: TensorTuple, node: TensorTuple) -> Tensor:
        return Stack(self.axis)(out_grad)


def split(a: Tensor, axis: int) -> TensorTuple:
    return Split(axis)(a)
