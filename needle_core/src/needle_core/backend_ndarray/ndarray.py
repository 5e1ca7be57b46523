"""NDArray: a strided view (shape, strides, offset) over a device buffer.

The course's NDArray API (docs/api.md §2). View operations (reshape of a compact array,
permute, broadcast_to, slicing, as_strided) never copy; ``compact()`` copies only
when needed. Every kernel call is a plain attribute of the device (the registry
froze the table), so the per-op path is: check shapes, allocate, call.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .._reload import keep
from ..device import Device
from ..registry import resolve_device as _resolve_device
from ._shapes import _COMPACT_STRIDES as _STRIDES_CACHE
from ._shapes import check_shape, compact_strides, is_compact_layout, normalize_axes
from .layout import dense_order
from .dtypes import astype, check_dtype, implicit_dtype, normalize_dtype, promote

_prod = math.prod
_PERMUTATIONS: dict[tuple[tuple[int, ...], int], tuple[int, ...]] = {}  # (axes, ndim) -> validated axes
_REDUCED_LAST: dict[tuple[tuple[int, ...], int], tuple[int, ...]] = {}  # (axes, ndim) -> kept axes, then axes


def _alloc(shape: tuple[int, ...], device: Device, dtype: str = "float32") -> NDArray:
    """A new compact array (uninitialised). The hot path: no validation."""
    size = _prod(shape)
    out = _new(NDArray)
    out._handle = device.Array(size) if dtype == "float32" else device.Array(size, dtype)
    out.shape = shape
    strides = _STRIDES_CACHE.get(shape)  # inlined cache hit: every op allocates
    out.strides = compact_strides(shape) if strides is None else strides
    out.device = device
    out.dtype = dtype
    out.size = size
    out._offset = 0
    out._compact = True
    return out


def _operand_error(a: NDArray, other: Any, what: str) -> Exception:
    return TypeError(
        f"{what}: expected an NDArray of shape {a.shape} or a real scalar, got {type(other).__name__} "
        f"{getattr(other, 'shape', '')}".rstrip()
        + " (use nd.array(...) and broadcast_to first)"
    )


class NDArray:
    """A strided n-d view of a device buffer. ``NDArray(other, device=None,
    dtype=None)`` copies ``other`` (NumPy array, NDArray, nested list or scalar)."""

    __slots__ = ("shape", "strides", "device", "dtype", "size", "_handle", "_offset", "_compact", "__weakref__")
    __array_ufunc__ = None  # NumPy operands defer to our reflected operators
    __hash__ = None  # type: ignore[assignment]  # == is elementwise, as in NumPy

    def __init__(self, other: Any, device: Device | str | None = None, dtype: Any = None) -> None:
        if isinstance(other, NDArray):
            dev = other.device if device is None else _resolve_device(device)
            src = other.to(dev)
            if dtype is not None:
                src = astype(src, check_dtype(normalize_dtype(dtype), dev))
            src = src._copy() if src._handle is other._handle else src.compact()
        else:
            src = _from_host(np.asarray(other), _resolve_device(device), dtype)
        self._assign(src)

    def _assign(self, src: NDArray) -> None:
        self.shape, self.strides, self.device, self.dtype = src.shape, src.strides, src.device, src.dtype
        self.size, self._handle, self._offset, self._compact = src.size, src._handle, src._offset, src._compact

    # -- construction -------------------------------------------------------------
    @staticmethod
    def make(
        shape: Iterable[int],
        strides: Iterable[int] | None = None,
        device: Device | str | None = None,
        handle: Any = None,
        offset: int = 0,
        *,
        dtype: Any = None,
    ) -> NDArray:
        """A view ``(shape, strides, offset)`` of ``handle``; allocates a compact
        buffer when ``handle`` is None (``dtype`` picks its dtype, float32 default)."""
        shape = check_shape(shape)
        dev = _resolve_device(device)
        if handle is None:
            dt = "float32" if dtype is None else check_dtype(normalize_dtype(dtype), dev)
            if strides is None and offset == 0:
                return _alloc(shape, dev, dt)
            handle = dev.Array(_prod(shape)) if dt == "float32" else dev.Array(_prod(shape), dt)
        dt = getattr(handle, "dtype", "float32")
        out = _new(NDArray)
        out._handle = handle
        out.device = dev
        out.dtype = dt if type(dt) is str else normalize_dtype(dt)
        out._set_view(shape, compact_strides(shape) if strides is None else tuple(int(s) for s in strides), offset)
        return out

    def _set_view(self, shape: tuple, strides: tuple, offset: int) -> None:
        self.shape = shape
        self.strides = strides
        self._offset = offset
        self.size = size = _prod(shape)
        self._compact = is_compact_layout(shape, strides, offset, size, self._handle.size)

    def _view(self, shape: tuple, strides: tuple, offset: int, compact: bool | None = None) -> NDArray:
        """A view sharing this buffer (no validation: callers computed it).
        ``compact`` skips the layout test when the caller knows the answer."""
        out = _new(NDArray)
        out._handle = self._handle
        out.device = self.device
        out.dtype = self.dtype
        if compact is None:
            out._set_view(shape, strides, offset)
        else:
            out.shape, out.strides, out._offset, out.size, out._compact = shape, strides, offset, self.size, compact
        return out

    def _copy(self) -> NDArray:
        out = _alloc(self.shape, self.device, self.dtype)
        if self.size:
            self.device.compact(self._handle, out._handle, self.shape, self.strides, self._offset)
        return out

    # -- copy / deepcopy / pickle: on every device, through the public ABI only ----
    def __copy__(self) -> NDArray:
        """A compact copy in a new buffer on the same device (as NumPy: an array of
        floats has no parts to share, so a shallow copy copies the values too)."""
        return self._copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> NDArray:
        """A compact copy on the same device (the same ``Device`` object), made by the
        device's ``compact`` kernel: no host round trip. A view's copy is compact."""
        return self._copy()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled as NumPy values + dtype + device name (buffers are not picklable);
        loads onto that device, or elsewhere under ``map_location`` (see pickling.py)."""
        return _pickling.reduce_ndarray(self)

    # -- attributes ---------------------------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.shape)

    # the course's private names, for code written against them
    @property
    def _shape(self) -> tuple[int, ...]:
        return self.shape

    @property
    def _strides(self) -> tuple[int, ...]:
        return self.strides

    @property
    def _device(self) -> Device:
        return self.device

    @property
    def flat(self) -> NDArray:
        """A 1-D view of this (compact) array: ``a.flat[j] += eps`` writes through."""
        if not self._compact:
            raise ValueError(
                f"flat needs a compact array; this view (shape {self.shape}, strides {self.strides}, "
                f"offset {self._offset}) is not: call .compact() first"
            )
        return self._view((self.size,), (1,), 0, True)

    # -- host transfer ------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """This array's values as a NumPy array (cpu_numpy returns a copy; the ABI
        lets a backend whose memory is host memory return a view of it)."""
        if not self.size:
            return np.empty(self.shape, dtype=self.dtype)
        return self.device.to_numpy(self._handle, self.shape, self.strides, self._offset)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        out = self.numpy()
        if copy and not out.flags.owndata:  # the backend handed out a view of its memory
            out = out.copy()
        return out if dtype is None else out.astype(dtype, copy=False)

    # DLPack (dlpack.py): NumPy/PyTorch share this array's memory on host backends
    def __dlpack__(self, *, stream: Any = None, max_version: Any = None, dl_device: Any = None,
                   copy: bool | None = None) -> Any:
        return _dlpack.export(self, stream=stream, max_version=max_version, dl_device=dl_device, copy=copy)

    def __dlpack_device__(self) -> tuple[int, int]:
        return _dlpack.dlpack_device(self)

    def astype(self, dtype: Any) -> np.ndarray:
        """A NumPy array of ``dtype`` (the course hands this to NumPy code)."""
        return self.numpy().astype(dtype)

    def to(self, device: Device | str) -> NDArray:
        dev = _resolve_device(device)
        if dev is self.device or dev == self.device:
            return self
        return NDArray(self.numpy(), device=dev)

    def __repr__(self) -> str:
        return f"NDArray({self.numpy()!s}, device={self.device!r}, dtype={self.dtype!r})"

    def __str__(self) -> str:
        return str(self.numpy())

    def __float__(self) -> float:
        if self.size != 1:
            raise TypeError(f"only a one-element array converts to float, this one has shape {self.shape}")
        return float(self.numpy().reshape(-1)[0])

    def __bool__(self) -> bool:
        if self.size != 1:
            raise ValueError(
                f"the truth value of an array of shape {self.shape} is ambiguous: use .numpy().any()/.all()"
            )
        return bool(float(self))

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __iter__(self):
        """Views of the sub-arrays along axis 0 (that axis dropped, as NumPy does);
        defined so iteration never falls back to course-style ``a[i]`` indexing."""
        if not self.shape:
            raise TypeError("iteration over a 0-d array")
        shape, strides, step = self.shape[1:], self.strides[1:], self.strides[0]
        return (self._view(shape, strides, self._offset + i * step) for i in range(self.shape[0]))

    # -- layout ---------------------------------------------------------------------
    def is_compact(self) -> bool:
        return self._compact

    def compact(self) -> NDArray:
        """This array if it is compact, else a compact copy."""
        return self if self._compact else self._copy()

    def fill(self, value: float) -> None:
        """Set every element of this view to ``value``."""
        if 0 in self.strides:
            _check_writable(self, "fill")
        if self._compact:
            self.device.fill(self._handle, float(value))
        elif self.size:
            self.device.scalar_setitem(self.size, float(value), self._handle, self.shape, self.strides, self._offset)

    def as_strided(self, shape: Iterable[int], strides: Iterable[int]) -> NDArray:
        """A view with explicit element ``strides`` (offset kept), checked to stay
        inside the buffer."""
        shape, strides = check_shape(shape), tuple(int(s) for s in strides)
        if len(shape) != len(strides):
            raise ValueError(f"as_strided: shape {shape} and strides {strides} differ in length")
        if any(s < 0 for s in strides):
            raise ValueError(f"as_strided: strides must be non-negative, got {strides}")
        last = self._offset + sum((n - 1) * s for n, s in zip(shape, strides, strict=True))
        if _prod(shape) and last >= self._handle.size:
            raise ValueError(
                f"as_strided: shape {shape} with strides {strides} at offset {self._offset} reaches past "
                f"the buffer's {self._handle.size} elements"
            )
        return self._view(shape, strides, self._offset)

    def reshape(self, new_shape: Iterable[int] | int, *more: int) -> NDArray:
        """A view of a compact array with ``new_shape`` (one entry may be -1)."""
        shape = (new_shape, *more) if more or isinstance(new_shape, int) else tuple(new_shape)
        if -1 in shape:
            known = _prod(n for n in shape if n != -1)
            if shape.count(-1) > 1 or known == 0 or self.size % known:
                raise ValueError(f"cannot reshape an array of shape {self.shape} into shape {shape}")
            shape = tuple(self.size // known if n == -1 else n for n in shape)
        shape = check_shape(shape)
        if _prod(shape) != self.size:
            raise ValueError(
                f"cannot reshape an array of shape {self.shape} ({self.size} elements) into shape {shape} "
                f"({_prod(shape)} elements)"
            )
        if not self._compact:
            raise ValueError(
                f"reshape needs a compact array; this view (shape {self.shape}, strides {self.strides}, "
                f"offset {self._offset}) is not: call .compact() first"
            )
        return self._view(shape, compact_strides(shape), 0, True)

    def permute(self, new_axes: Iterable[int]) -> NDArray:
        """A view with axes reordered: axis ``i`` of the result is ``new_axes[i]``."""
        shape, strides = self.shape, self.strides
        axes = new_axes if type(new_axes) is tuple else tuple(new_axes)
        key = (axes, len(shape))
        order = _PERMUTATIONS.get(key)  # validated once per (axes, ndim): backward transposes every step
        if order is None:
            axes = tuple(int(a) for a in axes)
            if sorted(axes) != list(range(len(shape))):
                raise ValueError(f"permute: {axes} is not a permutation of the axes of an array of shape {shape}")
            order = axes
            if len(_PERMUTATIONS) < 4096 and all(type(a) is int for a in key[0]):
                _PERMUTATIONS[key] = order
        new_shape = tuple([shape[a] for a in order])
        new_strides = tuple([strides[a] for a in order])
        if self._compact and self.size:
            # a compact array stays compact iff its axes longer than 1 keep their order
            last, compact = -1, True
            for a in order:
                if shape[a] != 1:
                    if a < last:
                        compact = False
                        break
                    last = a
            return self._view(new_shape, new_strides, self._offset, compact)
        return self._view(new_shape, new_strides, self._offset)

    def broadcast_to(self, new_shape: Iterable[int]) -> NDArray:
        """A view repeating length-1 axes (stride 0); new leading axes may be added."""
        new_shape = tuple(new_shape)
        if new_shape == self.shape:
            return self
        lead = len(new_shape) - len(self.shape)
        strides = [0] * lead if lead >= 0 else None
        if strides is not None:
            for old, stride, new in zip(self.shape, self.strides, new_shape[lead:], strict=True):
                if old == new:
                    strides.append(stride)
                elif old == 1 and new >= 0:
                    strides.append(0)
                else:
                    strides = None
                    break
        if strides is None:
            raise ValueError(
                f"cannot broadcast an array of shape {self.shape} to shape {new_shape}: each axis must "
                "match or be 1 (new axes go in front)"
            )
        return self._view(check_shape(new_shape), tuple(strides), self._offset)

    # -- indexing (the course's rules: one index per axis, ints keep their axis) ---
    def process_slice(self, sl: slice, dim: int) -> slice:
        """``sl`` with explicit start/stop/step within axis ``dim`` (Python clamping,
        negative indices from the end); steps must be positive."""
        if sl.step is not None and sl.step <= 0:
            raise ValueError(f"slice steps must be positive, got {sl.step} on axis {dim}; use flip() to reverse")
        return slice(*sl.indices(self.shape[dim]))

    def __getitem__(self, idxs: Any) -> NDArray:
        if not isinstance(idxs, tuple):
            idxs = (idxs,)
        if len(idxs) != len(self.shape):
            raise IndexError(
                f"expected exactly one index per dimension ({len(self.shape)} for shape {self.shape}), "
                f"got {len(idxs)}: {idxs!r}"
            )
        shape, strides, offset = [], [], self._offset
        for dim, (idx, n, stride) in enumerate(zip(idxs, self.shape, self.strides, strict=True)):
            if isinstance(idx, slice):
                start, stop, step = self.process_slice(idx, dim).indices(n)
                length = max(0, (stop - start + step - 1) // step)
            else:
                try:
                    start = operator.index(idx)
                except TypeError:
                    raise TypeError(
                        f"index {idx!r} on axis {dim}: only ints and slices are supported (course indexing)"
                    ) from None
                if start < 0:
                    start += n
                if not 0 <= start < n:
                    raise IndexError(f"index {idx} is out of range for axis {dim} of size {n} (shape {self.shape})")
                step, length = 1, 1
            if length:
                offset += start * stride
            shape.append(length)
            # an axis of length <= 1 never moves: keep its stride, so a huge step
            # (a[::2**64]) selects the first element as in Python instead of overflowing
            strides.append(stride * step if length > 1 else stride)
        return self._view(tuple(shape), tuple(strides), offset)

    def __setitem__(self, idxs: Any, other: Any) -> None:
        """Write ``other`` into the view ``self[idxs]``: a real scalar, or an array
        (NDArray, NumPy array, nested list) with the view's number of elements or
        with one element (assigned to every element, as NumPy broadcasts it)."""
        view = self[idxs]
        dev = self.device
        if 0 in view.strides:
            _check_writable(view, "assignment")
        if isinstance(other, (np.ndarray, list, tuple)):
            try:
                other = NDArray(other, device=dev, dtype=self.dtype)
            except (TypeError, ValueError):
                raise _operand_error(view, other, "__setitem__") from None
        if isinstance(other, NDArray):
            if other.size == 1 and view.size != 1:
                other = float(other)  # one value for every element
            elif other.size != view.size:
                raise ValueError(
                    f"cannot assign an array of shape {other.shape} to a view of shape {view.shape}: "
                    "the number of elements must match (or be 1)"
                )
            else:
                self._setitem_array(view, other)
                return
        value = _scalar(view, other, "__setitem__")
        if view.size:
            dev.scalar_setitem(view.size, value, self._handle, view.shape, view.strides, view._offset)

    def _setitem_array(self, view: NDArray, other: NDArray) -> None:
        dev = self.device
        if other.device is not dev:
            _check_device(self, other)
        src = astype(other, self.dtype).compact()
        if src._handle is self._handle:  # a permuted view of the same buffer: copy first
            src = src._copy()
        if view.size:
            dev.ewise_setitem(src._handle, self._handle, view.shape, view.strides, view._offset)

    # -- elementwise ------------------------------------------------------------------
    def _binary(self, other: Any, ewise: str, scalar: str) -> NDArray:
        dev = self.device
        if isinstance(other, NDArray):
            if other.shape != self.shape:
                raise ValueError(
                    f"elementwise {ewise[6:]}: shapes {self.shape} and {other.shape} differ; NDArray operands "
                    "need equal shapes (call broadcast_to first)"
                )
            a, b = self, other
            if b.device is not dev:
                _check_device(a, b)
            if a.dtype != b.dtype:
                a, b = promote(a, b)
            if a._compact and b._compact:  # (ewise_binary inlined: the NDArray operators' hot path)
                out = _alloc(a.shape, dev, a.dtype)
                getattr(dev, ewise)(a._handle, b._handle, out._handle)
                return out
            return _ewise_views(a, b, ewise)
        return unary_kernel(self, getattr(dev, scalar), _scalar(self, other, scalar))

    def _unary(self, kernel: str) -> NDArray:
        return unary_kernel(self, getattr(self.device, kernel))

    # Operators: generated from _OPERATORS below the class (one table for all of them).
    __hash__ = None  # an elementwise __eq__ (generated below) makes arrays unhashable, as in NumPy

    def __matmul__(self, other: NDArray) -> NDArray:
        return _composite.matmul(self, other)

    # -- reductions -------------------------------------------------------------------
    def _reduce(self, axis: Any, keepdims: bool, view_kernel: str, kernel: str) -> NDArray:
        shape = self.shape
        ndim = len(shape)
        if axis is None:
            axes = tuple(range(ndim))
        elif type(axis) is int and -ndim <= axis < ndim:
            axes = (axis % ndim,)
        else:
            axes = normalize_axes(axis, ndim, kernel.removeprefix("reduce_"), shape)
        if not axes:  # reducing over no axis is the identity (kernels need reduce_ndim >= 1)
            return self._copy()
        if keepdims:
            out_shape = tuple(1 if i in axes else n for i, n in enumerate(shape))
        else:
            out_shape = tuple(n for i, n in enumerate(shape) if i not in axes)
        if kernel == "reduce_max" and not _prod([shape[i] for i in axes]):  # even when the result is empty (NumPy)
            raise ValueError(
                f"max over an empty axis (shape {shape}, axes {axes}) has no value: the maximum of no "
                "elements is undefined (sum has 0)"
            )
        return self._reduce_to(axes, out_shape, view_kernel, kernel)

    def _reduce_to(self, axes: tuple[int, ...], out_shape: tuple[int, ...], view_kernel: str, kernel: str) -> NDArray:
        """Reduce over ``axes`` (sorted, unique, non-empty: callers normalised them) into
        a new compact array of ``out_shape`` (any shape holding the kept elements)."""
        if 0 in self.strides:  # a broadcast axis is reduced without expanding it
            broadcast = _reduce_broadcast(self, axes, out_shape, view_kernel, kernel)
            if broadcast is not None:
                return broadcast
        if not self.size:  # nothing to read (a zero-size view may sit at any offset)
            out = _alloc(out_shape, self.device, self.dtype)
            out.fill(0.0)  # the sum of no elements; max raised before
            return out
        shape = self.shape
        ndim = len(shape)
        reduce_size = _prod([shape[i] for i in axes])
        # reduced axes last, as a view: the kernels reduce trailing axes
        view = self
        if axes[0] != ndim - len(axes):
            perm = _REDUCED_LAST.get((axes, ndim))
            if perm is None:
                perm = tuple([i for i in range(ndim) if i not in axes]) + axes
                if len(_REDUCED_LAST) < 4096:
                    _REDUCED_LAST[(axes, ndim)] = perm
            view = self.permute(perm)
        dev = self.device
        out = _alloc(out_shape, dev, self.dtype)
        reduce_view = getattr(dev, view_kernel)
        if view._compact:  # the primitive is the cheapest call for a compact block
            getattr(dev, kernel)(view._handle, out._handle, reduce_size)
        elif reduce_view is not None:
            reduce_view(view._handle, out._handle, view.shape, view.strides, view._offset, len(axes))
        else:
            getattr(dev, kernel)(view._copy()._handle, out._handle, reduce_size)
        return out

    def sum(self, axis: int | Iterable[int] | None = None, keepdims: bool = False) -> NDArray:
        """Sum over ``axis`` (None: all axes, giving shape ``()`` unless ``keepdims``)."""
        return self._reduce(axis, keepdims, "reduce_sum_view", "reduce_sum")

    def max(self, axis: int | Iterable[int] | None = None, keepdims: bool = False) -> NDArray:
        """Maximum over ``axis`` (as ``sum``)."""
        return self._reduce(axis, keepdims, "reduce_max_view", "reduce_max")

    # -- copies with a new layout ----------------------------------------------------
    def flip(self, axes: int | Iterable[int] | None = None) -> NDArray:
        """A compact copy reversed along ``axes`` (None: all axes)."""
        return _composite.flip(self, axes)

    def pad(self, axes: Iterable[tuple[int, int]]) -> NDArray:
        """A compact copy zero-padded by one ``(before, after)`` pair per axis."""
        pads = tuple((int(b), int(a)) for b, a in axes)
        if len(pads) != len(self.shape) or any(b < 0 or a < 0 for b, a in pads):
            raise ValueError(
                f"pad: expected {len(self.shape)} non-negative (before, after) pairs for shape {self.shape}, got {pads}"
            )
        out = _alloc(tuple(n + b + a for n, (b, a) in zip(self.shape, pads, strict=True)), self.device, self.dtype)
        out.fill(0.0)
        out[tuple(slice(b, b + n) for n, (b, _) in zip(self.shape, pads, strict=True))] = self
        return out


# -- NDArray operators: one table ---------------------------------------------------
# A pair names the row's array and scalar kernels (``a op b`` for an NDArray ``b`` of
# the same shape, or a real scalar); a function is a composition of other operators.
# Comparisons write 1.0/0.0 and are composed so that NaN compares false (as in C).
_OPERATORS: dict[str, tuple[str, str] | Callable[..., NDArray]] = {
    "__add__": ("ewise_add", "scalar_add"),
    "__radd__": ("ewise_add", "scalar_add"),
    "__mul__": ("ewise_mul", "scalar_mul"),
    "__rmul__": ("ewise_mul", "scalar_mul"),
    "__truediv__": ("ewise_div", "scalar_div"),
    "maximum": ("ewise_maximum", "scalar_maximum"),
    "__eq__": ("ewise_eq", "scalar_eq"),
    "__ge__": ("ewise_ge", "scalar_ge"),
    "__sub__": lambda a, b: a._binary(
        _composite.neg(b) if isinstance(b, NDArray) else -_scalar(a, b, "sub"), "ewise_add", "scalar_add"
    ),
    "__rsub__": lambda a, b: _composite.neg(a) + b,
    "__rtruediv__": lambda a, b: full(a.shape, _scalar(a, b, "rtruediv"), a.dtype, a.device)._binary(
        a, "ewise_div", "scalar_div"
    ),
    "__pow__": lambda a, b: _composite.power(a, b) if isinstance(b, NDArray) else a._binary(
        b, "ewise_power", "scalar_power"
    ),
    "__neg__": lambda a: _composite.neg(a),
    "log": lambda a: a._unary("ewise_log"),
    "exp": lambda a: a._unary("ewise_exp"),
    "tanh": lambda a: a._unary("ewise_tanh"),
    "sin": lambda a: _composite.sin(a),
    "__ne__": lambda a, b: 1.0 - (a == b),
    "__gt__": lambda a, b: (a >= b) - (a == b),
    "__lt__": lambda a, b: b > a if isinstance(b, NDArray) else _composite.neg(a) > -_scalar(a, b, "lt"),
    "__le__": lambda a, b: b >= a if isinstance(b, NDArray) else _composite.neg(a) >= -_scalar(a, b, "le"),
}  # fmt: skip


def _kernel_operator(name: str, ewise: str, scalar: str) -> Callable[[NDArray, Any], NDArray]:
    def method(self: NDArray, other: Any) -> NDArray:
        return self._binary(other, ewise, scalar)

    method.__name__ = method.__qualname__ = name
    return method


for _name, _entry in _OPERATORS.items():
    setattr(NDArray, _name, _kernel_operator(_name, *_entry) if isinstance(_entry, tuple) else _entry)
del _name, _entry

keep(globals(), "NDArray")  # one NDArray class across importlib.reload / autoreload

_new = object.__new__


# -- op fast paths: callers (the Tensor ops) already checked shapes, dtypes, devices ------
def ewise_binary(a: NDArray, b: NDArray, kernel: str) -> NDArray:
    """``kernel(a, b)`` for operands of equal shape, dtype and device (no checks)."""
    if a._compact and b._compact:
        out = _alloc(a.shape, a.device, a.dtype)
        getattr(a.device, kernel)(a._handle, b._handle, out._handle)
        return out
    return _ewise_views(a, b, kernel)


def _dense_order(a: NDArray) -> tuple[int, ...] | None:
    """The axis order in which view ``a`` is its whole buffer, row-major (see layout.py)."""
    if a._offset or a.size != a._handle.size:
        return None
    return dense_order(a.shape, a.strides)


def _ewise_views(a: NDArray, b: NDArray, kernel: str) -> NDArray:
    """``kernel(a, b)`` where an operand is a view (broadcast, permuted, sliced).

    When neither is compact but one is a whole buffer in another axis order (an NCHW
    view of NHWC data), the result keeps that layout and the loop runs in it: over the
    flat buffers when both share it, else with the other operand read strided. Otherwise
    the result is row-major, a view read in place with ``ewise_strided`` where the
    device has it, else compacted first."""
    dev = a.device
    strided = dev.ewise_strided
    if not a._compact and not b._compact:
        lead = a if _dense_order(a) is not None else b if _dense_order(b) is not None else None
        if lead is not None:
            out = _alloc(a.shape, dev, a.dtype)
            if a.strides == b.strides and _dense_order(b if a is lead else a) is not None:
                getattr(dev, kernel)(a._handle, b._handle, out._handle)
            else:
                order = _dense_order(lead)
                shape = tuple(a.shape[i] for i in order)
                sa, sb = tuple(a.strides[i] for i in order), tuple(b.strides[i] for i in order)
                if strided is not None:
                    if out.size:
                        strided(kernel, a._handle, sa, a._offset, b._handle, sb, b._offset, out._handle, shape)
                else:
                    ha = a._handle if a is lead else a._view(shape, sa, a._offset).compact()._handle
                    hb = b._handle if b is lead else b._view(shape, sb, b._offset).compact()._handle
                    getattr(dev, kernel)(ha, hb, out._handle)
            return out._view(a.shape, lead.strides, 0, False)
    out = _alloc(a.shape, dev, a.dtype)
    if strided is not None:
        if out.size:
            strided(kernel, a._handle, a.strides, a._offset, b._handle, b.strides, b._offset, out._handle, a.shape)
        return out
    getattr(dev, kernel)(
        a._handle if a._compact else a._copy()._handle, b._handle if b._compact else b._copy()._handle, out._handle
    )
    return out


def unary_kernel(a: NDArray, fn: Callable, *args: Any) -> NDArray:
    """``fn(a, *args, out)`` of a unary or scalar kernel: over the flat buffer, the result
    in ``a``'s layout, when ``a`` is compact or a whole buffer in another axis order;
    else over a compact copy."""
    out = _alloc(a.shape, a.device, a.dtype)
    if a._compact:
        fn(a._handle, *args, out._handle)
        return out
    if _dense_order(a) is not None:
        fn(a._handle, *args, out._handle)
        return out._view(a.shape, a.strides, 0, False)
    fn(a._copy()._handle, *args, out._handle)
    return out


def scalar_binary(a: NDArray, value: float, kernel: str) -> NDArray:
    """``kernel(a, value)`` for a Python float ``value`` (no checks)."""
    return unary_kernel(a, getattr(a.device, kernel), value)


def _reduce_broadcast(a: NDArray, axes: tuple[int, ...], out_shape: tuple, view_kernel: str, kernel: str):
    """Reduce ``a`` over ``axes`` where some of them repeat one element (stride 0):
    each such axis is dropped (left as length 1), a sum is then multiplied by the
    number of repeats and a max is unchanged, so a broadcast view of 10^10 elements
    costs what its distinct elements cost. None when no reduced axis broadcasts."""
    shape, strides = a.shape, a.strides
    repeats = 1
    new_shape = list(shape)
    for i in axes:
        if strides[i] == 0 and shape[i] > 1:
            repeats *= shape[i]
            new_shape[i] = 1
    if repeats == 1:
        return None
    out = a._view(tuple(new_shape), strides, a._offset)._reduce_to(axes, out_shape, view_kernel, kernel)
    if kernel == "reduce_sum":
        out = scalar_binary(out, float(repeats), "scalar_mul")
    return out


def _check_writable(view: NDArray, what: str) -> None:
    """Refuse writes through a view that repeats one element along an axis (stride 0):
    NumPy's "assignment destination is read-only"."""
    axes = [i for i, (n, s) in enumerate(zip(view.shape, view.strides, strict=True)) if s == 0 and n > 1]
    if axes and view.size:  # an empty view writes nothing (compact strides of (3, 0) are (0, 1))
        raise ValueError(
            f"{what}: the destination is a broadcast view (shape {view.shape}, strides {view.strides}) whose "
            f"axes {axes} repeat one element (stride 0), so it is read-only, as in NumPy; write into the array "
            "it was broadcast from, or into a copy made with .compact()"
        )


def _check_device(a: NDArray, b: NDArray) -> None:
    if b.device != a.device:
        raise ValueError(f"operands are on different devices: {str(a.device)!r} and {str(b.device)!r}; "
                         "move one with .to(device)")


def _scalar(a: NDArray, value: Any, what: str) -> float:
    """A scalar operand as a Python float (never promotes the array's dtype)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise _operand_error(a, value, what) from None


def _from_host(host: np.ndarray, device: Device, dtype: Any) -> NDArray:
    if dtype is None:
        dt = implicit_dtype(host.dtype, device)
    else:
        dt = check_dtype(normalize_dtype(dtype), device)
    host = np.asarray(host, dtype=dt, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
    out = _alloc(host.shape, device, dt)
    if out.size:
        device.from_numpy(host, out._handle)
    return out


# -- constructors (course API) ---------------------------------------------------------
def array(a: Any, dtype: Any = "float32", device: Device | str | None = None) -> NDArray:
    """A new NDArray holding a copy of ``a`` (float32 unless ``dtype`` says otherwise)."""
    return NDArray(a, device=device, dtype=dtype)


def empty(shape: Iterable[int], dtype: Any = "float32", device: Device | str | None = None) -> NDArray:
    """A new uninitialised compact NDArray."""
    dev = _resolve_device(device)
    return _alloc(check_shape(shape), dev, check_dtype(normalize_dtype(dtype), dev))


def full(
    shape: Iterable[int], fill_value: float, dtype: Any = "float32", device: Device | str | None = None
) -> NDArray:
    """A new compact NDArray with every element ``fill_value``."""
    out = empty(shape, dtype=dtype, device=device)
    out.fill(fill_value)
    return out


from . import composite as _composite  # noqa: E402  (composite imports NDArray from here)
from . import dlpack as _dlpack  # noqa: E402
from . import pickling as _pickling  # noqa: E402  (pickling imports NDArray from here)
