"""Declaring elementwise ops from rows: one call builds a course op class (a real
``TensorOp`` subclass with the course's name) and its public function.

    EWiseAdd, add = binary_op("EWiseAdd", "add", "ewise_add", lambda op, g, node: ...)

``kernel`` names a row of ``needle_core.kernels.ELEMENTWISE``; ``compute`` comes from
the row's kind (an optional row uses the device's kernel or its fallback in
``backend_ndarray.composite.FALLBACKS``); ``gradient(op, out_grad, node)`` (the
class's ``gradient`` method itself) returns the adjoints as Tensor ops.
``docs/backends.md`` ("Adding an elementwise op") gives the whole recipe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..autograd import Tensor, TensorOp
from ..backend_ndarray import NDArray
from ..backend_ndarray.composite import elementwise
from ..backend_ndarray.ndarray import ewise_binary, scalar_binary
from ..kernels import ELEMENTWISE_BY_NAME
from .common import align, as_scalar, unbroadcast

Gradient = Callable[[TensorOp, Tensor, Tensor], Any]  # (op, out_grad, node): the method itself

_MODULE = "needle_core.ops.mathematic"  # where the course's classes live (reprs, pickles)


def _row(kernel: str, kind: str) -> None:
    row = ELEMENTWISE_BY_NAME.get(kernel)
    if row is None or row.kind != kind:
        raise ValueError(f"{kernel!r} is not a {kind} row of needle_core.kernels.ELEMENTWISE; add the row there first")


def _make(cls_name: str, namespace: dict[str, Any], gradient: Gradient, doc: str | None) -> type[TensorOp]:
    namespace.update(gradient=gradient, __module__=_MODULE, __doc__=doc)
    return type(cls_name, (TensorOp,), namespace)


def binary_op(
    cls_name: str, fn_name: str, kernel: str, gradient: Gradient, doc: str | None = None
) -> tuple[type[TensorOp], Callable[[Tensor, Tensor], Tensor]]:
    """An op over two Tensors that broadcast as in NumPy (``compute`` aligns shapes,
    dtypes and devices only when they differ: the fast path checks three fields)."""
    _row(kernel, "binary")
    what = fn_name
    if ELEMENTWISE_BY_NAME[kernel].required:

        def compute(self: TensorOp, a: NDArray, b: NDArray) -> NDArray:
            if a.shape != b.shape or a.dtype != b.dtype or a.device is not b.device:
                a, b = align(a, b, what)
            return ewise_binary(a, b, kernel)

    else:
        function = elementwise(kernel)

        def compute(self: TensorOp, a: NDArray, b: NDArray) -> NDArray:
            if a.shape != b.shape or a.dtype != b.dtype or a.device is not b.device:
                a, b = align(a, b, what)
            return function(a, b)

    cls = _make(cls_name, {"compute": compute}, gradient, doc)

    def fn(a: Tensor, b: Tensor) -> Tensor:
        return cls()(a, b)

    fn.__name__ = fn.__qualname__ = fn_name
    fn.__module__ = _MODULE
    return cls, fn


def scalar_op(
    cls_name: str,
    fn_name: str,
    kernel: str,
    gradient: Gradient,
    doc: str | None = None,
    compute: Callable[[TensorOp, NDArray], NDArray] | None = None,
) -> tuple[type[TensorOp], Callable[[Tensor, Any], Tensor]]:
    """An op of a Tensor and a real scalar (``op.scalar``, a Python float)."""
    _row(kernel, "scalar")

    def __init__(self: TensorOp, scalar: Any) -> None:
        self.scalar = as_scalar(scalar)

    if compute is None:

        def compute(self: TensorOp, a: NDArray) -> NDArray:
            return scalar_binary(a, self.scalar, kernel)

    cls = _make(cls_name, {"__init__": __init__, "compute": compute}, gradient, doc)

    def fn(a: Tensor, scalar: Any) -> Tensor:
        return cls(scalar)(a)

    fn.__name__ = fn.__qualname__ = fn_name
    fn.__module__ = _MODULE
    return cls, fn


def unary_op(
    cls_name: str, fn_name: str, kernel: str, gradient: Gradient, doc: str | None = None
) -> tuple[type[TensorOp], Callable[[Tensor], Tensor]]:
    """An op of one Tensor (an optional row falls back as ``composite.FALLBACKS`` says)."""
    _row(kernel, "unary")
    function = elementwise(kernel)

    def compute(self: TensorOp, a: NDArray) -> NDArray:
        return function(a)

    cls = _make(cls_name, {"compute": compute}, gradient, doc)

    def fn(a: Tensor) -> Tensor:
        return cls()(a)

    fn.__name__ = fn.__qualname__ = fn_name
    fn.__module__ = _MODULE
    return cls, fn


def each_input(grad_a: Callable[..., Tensor], grad_b: Callable[..., Tensor]) -> Gradient:
    """A binary op's gradient from one adjoint per input, ``grad_x(out_grad, a, b, node)``:
    each is computed only for an input that requires grad, then summed back to its
    input's shape (an input that was broadcast)."""

    def gradient(op: TensorOp, out_grad: Tensor, node: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = node.inputs
        return (
            unbroadcast(grad_a(out_grad, a, b, node), a.shape) if a.requires_grad else None,
            unbroadcast(grad_b(out_grad, a, b, node), b.shape) if b.requires_grad else None,
        )

    return gradient
