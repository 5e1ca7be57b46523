"""Reverse-mode automatic differentiation: ``Value``, ``Tensor``, ``Op`` and backward.

The hot path is ``Tensor.make_from_op``: one ``compute`` call on the NDArrays, one
object allocation, a handful of attribute stores. Validation (broadcasting, dtype
promotion, devices) lives in the ops' slow paths, taken only when shapes, dtypes or
devices differ, so equal-shape float32 arithmetic pays for nothing it does not use.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from . import backend_ndarray as nd
from .backend_ndarray import NDArray
from .backend_ndarray.dtypes import check_dtype, normalize_dtype
from .registry import resolve_device as _resolve_device

#: Number of live ``Value`` objects; tests use it to prove optimisers build no graph.
#: (A reload keeps the count: the values made before it are still alive.)
TENSOR_COUNTER = globals().get("TENSOR_COUNTER", 0)
#: The course's switch: when False a node's data is computed as soon as it is built,
#: and a node whose inputs need no gradient is detached (keeps no inputs).
LAZY_MODE = False


class Op:
    """An operator: ``compute`` works on NDArrays, ``gradient`` on Tensors."""

    def __call__(self, *args: Value) -> Value:
        raise NotImplementedError()

    def compute(self, *args: NDArray) -> Any:
        """Forward on NDArrays; returns an NDArray (or a tuple of them)."""
        raise NotImplementedError()

    def gradient(self, out_grad: Value, node: Value) -> Value | tuple[Value | None, ...]:
        """The adjoint of each input given the output adjoint, as Tensor ops.

        An entry may be ``None`` for an input with ``requires_grad=False`` (backward
        ignores those entries anyway, so course ops returning every adjoint still work).
        """
        raise NotImplementedError()

    def gradient_as_tuple(self, out_grad: Value, node: Value) -> tuple[Value, ...]:
        output = self.gradient(out_grad, node)
        if isinstance(output, tuple):
            return output
        if isinstance(output, list):
            return tuple(output)
        return (output,)


class TensorOp(Op):
    """An op whose output is a single Tensor."""

    def __call__(self, *args: Tensor) -> Tensor:
        return Tensor.make_from_op(self, args)


class TensorTupleOp(Op):
    """An op whose output is a TensorTuple."""

    def __call__(self, *args: Value) -> TensorTuple:
        return TensorTuple.make_from_op(self, args)


class Value:
    """A node of the computational graph."""

    __slots__ = ("op", "inputs", "cached_data", "requires_grad", "grad", "__weakref__")

    op: Op | None
    inputs: list[Value]
    cached_data: Any
    requires_grad: bool

    def realize_cached_data(self) -> Any:
        data = self.cached_data
        if data is None:  # only under LAZY_MODE
            data = self.cached_data = self.op.compute(*[x.realize_cached_data() for x in self.inputs])
        return data

    def is_leaf(self) -> bool:
        return self.op is None

    def __del__(self) -> None:
        global TENSOR_COUNTER
        try:
            TENSOR_COUNTER -= 1
        except NameError:  # the module is being re-executed (IPython %autoreload cleared it)
            pass

    def __setstate__(self, state: Any) -> None:
        # copy/deepcopy/pickle rebuild a Value without _init: count it as live here
        global TENSOR_COUNTER
        TENSOR_COUNTER += 1
        dict_state, slot_state = state if isinstance(state, tuple) else (state, None)
        for mapping in (dict_state, slot_state):
            for name, value in (mapping or {}).items():
                setattr(self, name, value)

    def _init(
        self,
        op: Op | None,
        inputs: Sequence[Value],
        *,
        num_outputs: int = 1,
        cached_data: Any = None,
        requires_grad: bool | None = None,
    ) -> None:
        global TENSOR_COUNTER
        TENSOR_COUNTER += 1
        if requires_grad is None:
            requires_grad = any(x.requires_grad for x in inputs)
        self.op = op
        self.inputs = list(inputs)
        self.cached_data = cached_data
        self.requires_grad = requires_grad
        self.grad = None

    @classmethod
    def make_const(cls, data: Any, *, requires_grad: bool = False) -> Value:
        value = cls.__new__(cls)
        value._init(None, [], cached_data=data, requires_grad=requires_grad)
        return value

    @classmethod
    def make_from_op(cls, op: Op, inputs: Sequence[Value]) -> Value:
        # The per-op hot path: unrolled for the common 1- and 2-input ops.
        global TENSOR_COUNTER
        if LAZY_MODE:
            return cls._make_lazy(op, inputs)
        n = len(inputs)
        if n == 2:
            a, b = inputs
            da, db = a.cached_data, b.cached_data
            data = op.compute(
                a.realize_cached_data() if da is None else da, b.realize_cached_data() if db is None else db
            )
            requires_grad = a.requires_grad or b.requires_grad
            graph_inputs = [a, b] if requires_grad else []
        elif n == 1:
            a = inputs[0]
            da = a.cached_data
            data = op.compute(a.realize_cached_data() if da is None else da)
            requires_grad = a.requires_grad
            graph_inputs = [a] if requires_grad else []
        else:
            data = op.compute(*[x.realize_cached_data() for x in inputs])
            requires_grad = any(x.requires_grad for x in inputs)
            graph_inputs = list(inputs) if requires_grad else []
        value = _new(cls)
        TENSOR_COUNTER += 1
        value.cached_data = data
        value.requires_grad = requires_grad
        value.op = op if requires_grad else None  # no grad upstream: keep no graph
        value.inputs = graph_inputs
        value.grad = None
        return value

    @classmethod
    def _make_lazy(cls, op: Op, inputs: Sequence[Value]) -> Value:
        value = _new(cls)
        value._init(op, inputs)
        return value


_new = object.__new__


class TensorTuple(Value):
    """A tuple of Tensors produced by one op (e.g. ``split``)."""

    __slots__ = ()

    def __len__(self) -> int:
        return len(self.realize_cached_data())

    def __getitem__(self, index: int) -> Tensor:
        from .ops import tuple_get_item

        return tuple_get_item(self, index)

    def tuple(self) -> tuple[Tensor, ...]:
        return tuple(self[i] for i in range(len(self)))

    def __iter__(self):
        return iter(self.tuple())

    def __repr__(self) -> str:
        return "needle.TensorTuple" + str(self.tuple())

    __str__ = __repr__

    def __add__(self, other: TensorTuple) -> TensorTuple:
        from .ops import add, make_tuple

        if not isinstance(other, TensorTuple) or len(self) != len(other):
            raise TypeError(f"TensorTuple + expects a TensorTuple of length {len(self)}, got {other!r}")
        return make_tuple(*[add(x, y) for x, y in zip(self, other, strict=False)])

    def detach(self) -> TensorTuple:
        return TensorTuple.make_const(self.realize_cached_data())


class Tensor(Value):
    """An n-dimensional array that records the ops producing it."""

    __slots__ = ()
    # NumPy defers binary operators to us (np.float64(.1) * t stays a Tensor, float32)
    __array_ufunc__ = None

    def __init__(
        self,
        array: Any,
        *,
        device: Any = None,
        dtype: Any = None,
        requires_grad: bool = True,
        **kwargs: Any,
    ) -> None:
        global TENSOR_COUNTER
        TENSOR_COUNTER += 1  # first, so __del__ balances it even if conversion fails
        self.op = None
        self.inputs = []
        self.grad = None
        self.requires_grad = requires_grad
        self.cached_data = None
        if isinstance(array, Tensor):
            self.cached_data = to_ndarray(array.realize_cached_data(), device, dtype, share=True)
        else:
            self.cached_data = to_ndarray(array, device, dtype)

    # -- the course's constructors -------------------------------------------------
    @staticmethod
    def make_const(data: Any, requires_grad: bool = False) -> Tensor:
        if isinstance(data, Tensor):
            data = data.realize_cached_data()
        tensor = Tensor.__new__(Tensor)
        tensor._init(None, [], cached_data=data, requires_grad=requires_grad)
        return tensor

    # -- data and metadata ---------------------------------------------------------
    @property
    def data(self) -> Tensor:
        return self.detach()

    @data.setter
    def data(self, value: Tensor | NDArray) -> None:
        new = value.realize_cached_data() if isinstance(value, Tensor) else value
        if not isinstance(new, NDArray):
            raise TypeError(f"Tensor.data expects a Tensor or NDArray, got {type(value).__name__}")
        old = self.realize_cached_data()
        if new.dtype != old.dtype:
            raise TypeError(
                f"Tensor.data: dtype mismatch, the tensor holds {old.dtype} but the new value is "
                f"{new.dtype}; convert first, e.g. Tensor(value, dtype={str(old.dtype)!r})"
            )
        self.cached_data = new

    def detach(self) -> Tensor:
        return Tensor.make_const(self.realize_cached_data())

    # metadata reads skip the realize call when the data is there (always, outside LAZY_MODE)
    @property
    def shape(self) -> tuple[int, ...]:
        data = self.cached_data
        return (self.realize_cached_data() if data is None else data).shape

    @property
    def dtype(self) -> str:
        data = self.cached_data
        return (self.realize_cached_data() if data is None else data).dtype

    @property
    def device(self) -> Any:
        data = self.cached_data
        return (self.realize_cached_data() if data is None else data).device

    @property
    def ndim(self) -> int:
        return len(self.realize_cached_data().shape)

    @property
    def size(self) -> int:
        return math.prod(self.realize_cached_data().shape)

    def numpy(self) -> np.ndarray:
        return self.realize_cached_data().numpy()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.numpy()
        return out if dtype is None else out.astype(dtype)

    def __dlpack__(self, **kwargs: Any) -> Any:  # shares memory on host backends (NDArray.__dlpack__)
        return self.realize_cached_data().__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        return self.realize_cached_data().__dlpack_device__()

    def __repr__(self) -> str:
        return "needle.Tensor(" + str(self.realize_cached_data()) + ")"

    def __str__(self) -> str:
        return str(self.realize_cached_data())

    # -- autograd -----------------------------------------------------------------
    def backward(self, out_grad: Tensor | None = None) -> None:
        if out_grad is None:
            data = self.realize_cached_data()
            out_grad = Tensor.make_const(nd.full(data.shape, 1.0, dtype=data.dtype, device=data.device))
        else:
            if not isinstance(out_grad, Tensor):
                out_grad = Tensor(out_grad, device=self.device, requires_grad=False)
            if out_grad.shape != self.shape:
                raise ValueError(
                    f"backward: out_grad has shape {out_grad.shape} but the tensor it is the gradient of has "
                    f"shape {self.shape}; pass an out_grad of shape {self.shape} (or none, for ones)"
                )
        compute_gradient_of_variables(self, out_grad)

    # -- operators: desugared exactly as in the course (tests compare node lists) ---
    def _lift(self, other: Any) -> Tensor | None:
        """A multi-element array operand as a constant Tensor (scalars return None)."""
        if type(other) is float or type(other) is int:
            return None
        if isinstance(other, (np.ndarray, NDArray)) and other.size != 1:
            return Tensor(other, device=self.device, dtype=self.dtype, requires_grad=False)
        return None

    # The arithmetic operators (+ - * / ** and their reflections, unary -) come from
    # _OPERATORS at the end of this module.

    def __matmul__(self, other: Tensor) -> Tensor:
        return ops.MatMul()(self, other)

    def matmul(self, other: Tensor) -> Tensor:
        return self.__matmul__(other)

    def sum(self, axes: Any = None) -> Tensor:
        return ops.Summation(axes)(self)

    def broadcast_to(self, shape: Sequence[int]) -> Tensor:
        return ops.BroadcastTo(shape)(self)

    def reshape(self, shape: Sequence[int]) -> Tensor:
        return ops.Reshape(shape)(self)

    def transpose(self, axes: tuple[int, int] | None = None) -> Tensor:
        return ops.Transpose(axes)(self)


# -- conversion of user data to NDArrays (Tensor construction) ---------------------
def to_ndarray(array: Any, device: Any = None, dtype: Any = None, share: bool = False) -> NDArray:
    """The NDArray a ``Tensor(array, device=, dtype=)`` holds (docs/api.md section 3 rules).

    No dtype: float64 stays float64 on a device that holds it; every other input
    (float32, ints, bools, float64 on a float32-only device) becomes float32.
    ``share`` lets a Tensor input on the right device and dtype reuse its buffer.
    """
    if dtype is not None:
        dtype = normalize_dtype(dtype)
    if isinstance(array, NDArray):
        dev = array.device if device is None else _resolve_device(device)
        if dtype is None:
            dtype = array.dtype if array.dtype in dev.dtypes else "float32"
        check_dtype(dtype, dev)
        if share and dev == array.device and dtype == array.dtype:
            return array
        return nd.array(array, dtype=dtype, device=dev)  # a copy, as the course
    dev = _resolve_device(device)
    host = array if isinstance(array, np.ndarray) else np.asarray(array)
    if dtype is None:
        dtype = "float64" if host.dtype == np.float64 and "float64" in dev.dtypes else "float32"
    else:
        check_dtype(dtype, dev)
    return nd.array(host, dtype=dtype, device=dev)


def _sum_node_list(node_list: list[Tensor]) -> Tensor:
    """Sum adjoints with ordinary ops (never in place), keeping them differentiable."""
    total = node_list[0]
    for node in node_list[1:]:
        total = total + node
    return total


def find_topo_sort(node_list: Iterable[Value], *, grad_only: bool = False) -> list[Value]:
    """Post-order depth-first traversal, inputs left to right.

    Iterative, so graphs deeper than Python's recursion limit (long RNN unrolls)
    work; the order equals the recursive course definition. ``grad_only`` skips the
    inputs that do not require grad (backward's walk).
    """
    visited: set[Value] = set()
    topo_order: list[Value] = []
    for root in node_list:
        if root in visited:
            continue
        visited.add(root)
        stack = [(root, iter(root.inputs))]
        while stack:
            node, children = stack[-1]
            for child in children:
                if child not in visited and (child.requires_grad or not grad_only):
                    visited.add(child)
                    stack.append((child, iter(child.inputs)))
                    break
            else:
                stack.pop()
                topo_order.append(node)
    return topo_order


def compute_gradient_of_variables(output_tensor: Value, out_grad: Value) -> None:
    """Reverse-mode AD from ``output_tensor``: set ``.grad`` on the nodes that need one.

    What each node gets (docs/api.md section 3, made precise):

    - the root is always visited, even without ``requires_grad``, and gets ``out_grad``;
    - a node with ``requires_grad`` reached through nodes with ``requires_grad`` gets
      its adjoint (overwriting, as the course does): a leaf gets the differentiable
      Tensor (``x.grad.backward()`` gives second derivatives); a non-leaf gets the
      same values detached (a constant), because its differentiable adjoint is a
      graph that reaches back to the node itself (``exp``'s adjoint uses ``exp(x)``),
      a reference cycle only the cycle collector would free (a leaf's own cycle,
      ``w -> w.grad -> ... -> w``, is broken when the next backward or
      ``reset_grad`` replaces ``w.grad``, so a training step's graph is freed by
      reference counting);
    - a node without ``requires_grad`` is not visited and its ``.grad`` is not
      written: nothing can use its adjoint, so it is never computed (the batch of a
      training step costs no ``X`` gradient GEMM).

    ``Op.gradient`` may return ``None`` for an input that does not require grad; for
    an input that does, ``None`` means a zero adjoint. A Tensor's adjoint is the sum
    of its contributions. A TensorTuple's adjoint is kept per slot, so ``k``
    ``tuple_get_item`` consumers of an ``n``-tuple (an RNN's split over time) cost
    O(n + k) instead of ``k`` zero-filled n-tuples summed.
    """
    adjoints: dict[Value, Any] = {}
    _contribute(adjoints, output_tensor, out_grad)
    tuple_get_item = ops.TupleGetItem
    for node in reversed(_grad_topo_sort(output_tensor)):
        contributions = adjoints.pop(node, None)
        is_tensor = type(node) is Tensor
        if is_tensor or not isinstance(node, TensorTuple):
            if contributions is None:  # every contribution was None: a zero adjoint
                grad = _zeros_like(node)
            else:
                grad = contributions[0] if len(contributions) == 1 else _sum_node_list(contributions)
        else:
            grad = _tuple_adjoint(node, contributions or {})
        op = node.op
        if op is None or not node.requires_grad:  # a leaf, or a LAZY_MODE root without grad
            node.grad = grad
            continue
        # a non-leaf keeps a constant copy: no cycle node -> grad graph -> node
        node.grad = _detached(grad) if grad.requires_grad else grad
        if isinstance(op, tuple_get_item):  # straight into the tuple's slot
            source = node.inputs[0]
            if source.requires_grad:
                slots = adjoints.setdefault(source, {})
                slots.setdefault(op.index % len(source.realize_cached_data()), []).append(grad)
            continue
        for inp, inp_grad in zip(node.inputs, op.gradient_as_tuple(grad, node), strict=True):
            if inp_grad is None or not inp.requires_grad:
                continue
            if type(inp) is Tensor:  # the common case, inlined: one adjoint list per node
                terms = adjoints.get(inp)
                if terms is None:
                    adjoints[inp] = [inp_grad]
                else:
                    terms.append(inp_grad)
            else:
                _contribute(adjoints, inp, inp_grad)


def _grad_topo_sort(root: Value) -> list[Value]:
    """``find_topo_sort([root])`` restricted to nodes that require grad (and the root).

    A node without ``requires_grad`` holds no inputs outside LAZY_MODE, so this only
    drops those leaves; under LAZY_MODE it also skips their (gradient-free) subgraphs.
    """
    return find_topo_sort((root,), grad_only=True)


def _detached(grad: Value) -> Value:
    """``grad.detach()`` on the hot path: a constant sharing ``grad``'s NDArray(s)."""
    global TENSOR_COUNTER
    if type(grad) is not Tensor:
        return grad.detach()
    value = _new(Tensor)
    TENSOR_COUNTER += 1
    value.cached_data = grad.realize_cached_data()
    value.requires_grad = False
    value.op = None
    value.inputs = []
    value.grad = None
    return value


def _zeros_like(node: Value) -> Tensor:
    data = node.realize_cached_data()
    return Tensor.make_const(nd.full(data.shape, 0.0, dtype=data.dtype, device=data.device))


def _contribute(adjoints: dict[Value, Any], node: Value, grad: Value) -> None:
    if isinstance(node, TensorTuple):
        slots = adjoints.setdefault(node, {})
        for i in range(len(node.realize_cached_data())):
            slots.setdefault(i, []).append(grad[i])  # folds to the part when grad is make_tuple(...)
    else:
        adjoints.setdefault(node, []).append(grad)


def _tuple_adjoint(node: TensorTuple, slots: dict[int, list[Value]]) -> TensorTuple:
    """Each slot's summed contributions; a slot no consumer reached gets zeros."""
    parts = []
    for i, data in enumerate(node.realize_cached_data()):
        terms = slots.get(i)
        if terms:
            parts.append(terms[0] if len(terms) == 1 else _sum_node_list(terms))
        else:  # no consumer of this slot: a zero adjoint
            parts.append(Tensor.make_const(nd.full(data.shape, 0.0, dtype=data.dtype, device=data.device)))
    return ops.make_tuple(*parts)


# One class identity across importlib.reload / IPython %autoreload (see needle_core._reload).
from ._reload import keep  # noqa: E402

keep(globals(), "Op", "TensorOp", "TensorTupleOp", "Value", "TensorTuple", "Tensor")


# Bound last: ops imports this module, and operators look ops up at call time.
from . import ops  # noqa: E402


# -- Tensor operators: one table --------------------------------------------------------
# A pair ``(ScalarOp, array op)``: ``t op x`` is ``ScalarOp(x)(t)`` for a real scalar
# ``x`` and the array op for a Tensor (or a multi-element array, lifted to a constant
# Tensor). A function: the course's desugaring into other ops (tests compare the
# node lists). (make_from_op is looked up per call: the profiler patches it.)
def _operator(name: str, scalar_op: type[TensorOp], array_op: TensorOp) -> Any:
    def method(self: Tensor, other: Any) -> Tensor:
        if not isinstance(other, Tensor):
            lifted = self._lift(other)
            if lifted is None:
                return scalar_op(other)(self)
            other = lifted
        return Tensor.make_from_op(array_op, (self, other))

    method.__name__ = method.__qualname__ = name
    return method


def _sub(self: Tensor, other: Any) -> Tensor:  # a + (-b)
    if not isinstance(other, Tensor):
        lifted = self._lift(other)
        if lifted is None:
            return ops.AddScalar(-ops.as_scalar(other))(self)
        other = lifted
    return Tensor.make_from_op(ops.EWISE_ADD, (self, Tensor.make_from_op(ops.NEGATE, (other,))))


def _rsub(self: Tensor, other: Any) -> Tensor:  # (-b) + a
    if (lifted := self._lift(other)) is not None:
        return lifted - self
    return ops.AddScalar(other)(Tensor.make_from_op(ops.NEGATE, (self,)))


def _rtruediv(self: Tensor, other: Any) -> Tensor:  # a * b ** -1
    if (lifted := self._lift(other)) is not None:
        return lifted / self
    return ops.MulScalar(other)(ops.PowerScalar(-1.0)(self))


def _rpow(self: Tensor, other: Any) -> Tensor:  # a constant base tensor ** b
    if (lifted := self._lift(other)) is not None:
        return ops.EWisePow()(lifted, self)
    base = Tensor.make_const(nd.full(self.shape, ops.as_scalar(other), dtype=self.dtype, device=self.device))
    return ops.EWisePow()(base, self)


def _neg(self: Tensor) -> Tensor:
    return Tensor.make_from_op(ops.NEGATE, (self,))


_OPERATORS: dict[str, tuple[type[TensorOp], TensorOp] | Any] = {
    "__add__": (ops.AddScalar, ops.EWISE_ADD),
    "__radd__": (ops.AddScalar, ops.EWISE_ADD),
    "__mul__": (ops.MulScalar, ops.EWISE_MUL),
    "__rmul__": (ops.MulScalar, ops.EWISE_MUL),
    "__truediv__": (ops.DivScalar, ops.EWISE_DIV),
    "__pow__": (ops.PowerScalar, ops.EWisePow()),
    "__sub__": _sub,
    "__rsub__": _rsub,
    "__rtruediv__": _rtruediv,
    "__rpow__": _rpow,
    "__neg__": _neg,
}
for _name, _entry in _OPERATORS.items():
    if isinstance(_entry, tuple):
        _entry = _operator(_name, *_entry)
    else:
        _entry.__name__ = _entry.__qualname__ = _name
    setattr(Tensor, _name, _entry)
del _name, _entry

# NEEDLE_CHECK_AGAINST=<device>: cross-device checking for the whole run (needle_core.tools).
from os import environ as _environ  # noqa: E402

if _environ.get("NEEDLE_CHECK_AGAINST"):
    from .tools.check import enable_from_env

    enable_from_env()
