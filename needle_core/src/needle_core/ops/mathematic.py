"""Elementwise arithmetic, activations and matmul, with their gradients.

Binary ops accept NumPy-broadcastable operands: the broadcast happens inside
``compute`` (no extra graph node) and ``gradient`` sums each adjoint back to its
input's shape, returning ``None`` for an input that does not require grad (nothing
could use that adjoint, so its GEMM or unbroadcast sum is skipped). The one-line
condition in each ``compute`` keeps equal shapes, dtypes and devices on the fast path.
"""

from __future__ import annotations

from typing import Any

from .. import backend_ndarray as nd
from ..autograd import Tensor, TensorOp
from ..backend_ndarray import NDArray
from ..backend_ndarray.ndarray import ewise_binary, scalar_binary
from .common import align, as_scalar, broadcast_shapes, check_same_device, unbroadcast


class EWiseAdd(TensorOp):
    def compute(self, a: NDArray, b: NDArray) -> NDArray:
        if a.shape != b.shape or a.dtype != b.dtype or a.device is not b.device:
            a, b = align(a, b, "add")
        return ewise_binary(a, b, "ewise_add")

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = node.inputs
        return (
            unbroadcast(out_grad, a.shape) if a.requires_grad else None,
            unbroadcast(out_grad, b.shape) if b.requires_grad else None,
        )


def add(a: Tensor, b: Tensor) -> Tensor:
    return EWiseAdd()(a, b)


class AddScalar(TensorOp):
    def __init__(self, scalar: Any) -> None:
        self.scalar = as_scalar(scalar)

    def compute(self, a: NDArray) -> NDArray:
        return scalar_binary(a, self.scalar, "scalar_add")

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return out_grad


def add_scalar(a: Tensor, scalar: Any) -> Tensor:
    return AddScalar(scalar)(a)


class EWiseMul(TensorOp):
    def compute(self, a: NDArray, b: NDArray) -> NDArray:
        if a.shape != b.shape or a.dtype != b.dtype or a.device is not b.device:
            a, b = align(a, b, "multiply")
        return ewise_binary(a, b, "ewise_mul")

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = node.inputs
        return (
            unbroadcast(out_grad * b, a.shape) if a.requires_grad else None,
            unbroadcast(out_grad * a, b.shape) if b.requires_grad else None,
        )


def multiply(a: Tensor, b: Tensor) -> Tensor:
    return EWiseMul()(a, b)


class MulScalar(TensorOp):
    def __init__(self, scalar: Any) -> None:
        self.scalar = as_scalar(scalar)

    def compute(self, a: NDArray) -> NDArray:
        return scalar_binary(a, self.scalar, "scalar_mul")

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return out_grad * self.scalar


def mul_scalar(a: Tensor, scalar: Any) -> Tensor:
    return MulScalar(scalar)(a)


class EWisePow(TensorOp):
    """``a ** b`` elementwise (NaN for negative bases with non-integer exponents, as in C)."""

    def compute(self, a: NDArray, b: NDArray) -> NDArray:
        if a.shape != b.shape or a.dtype != b.dtype or a.device is not b.device:
            a, b = align(a, b, "power")
        return nd.power(a, b)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = node.inputs
        grad_a = unbroadcast(out_grad * b * power(a, b - 1.0), a.shape) if a.requires_grad else None
        grad_b = unbroadcast(out_grad * node * log(a), b.shape) if b.requires_grad else None
        return grad_a, grad_b


def power(a: Tensor, b: Tensor) -> Tensor:
    return EWisePow()(a, b)


class PowerScalar(TensorOp):
    """``a ** scalar`` for any real exponent."""

    def __init__(self, scalar: Any) -> None:
        self.scalar = as_scalar(scalar)

    def compute(self, a: NDArray) -> NDArray:
        if self.scalar == 2.0:  # a square is one correctly rounded multiply: cheaper than pow
            return ewise_binary(a, a, "ewise_mul")
        return scalar_binary(a, self.scalar, "scalar_power")

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        s = self.scalar
        a = node.inputs[0]
        if s == 0.0:  # d/da a**0 = 0 everywhere (avoids 0 * inf at a = 0)
            return out_grad * 0.0
        if s == 1.0:
            return out_grad
        if s == 2.0:
            return out_grad * (a * 2.0)
        return out_grad * (PowerScalar(s - 1.0)(a) * s)


def power_scalar(a: Tensor, scalar: Any) -> Tensor:
    return PowerScalar(scalar)(a)


class EWiseDiv(TensorOp):
    def compute(self, a: NDArray, b: NDArray) -> NDArray:
        if a.shape != b.shape or a.dtype != b.dtype or a.device is not b.device:
            a, b = align(a, b, "divide")
        return ewise_binary(a, b, "ewise_div")

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor | None, Tensor | None]:
        a, b = node.inputs
        grad_a = out_grad / b
        grad_b = unbroadcast(-(grad_a * node), b.shape) if b.requires_grad else None  # -g*a/b**2 = -(g/b)*(a/b)
        return (unbroadcast(grad_a, a.shape) if a.requires_grad else None), grad_b


def divide(a: Tensor, b: Tensor) -> Tensor:
    return EWiseDiv()(a, b)


class DivScalar(TensorOp):
    def __init__(self, scalar: Any) -> None:
        self.scalar = as_scalar(scalar)

    def compute(self, a: NDArray) -> NDArray:
        return scalar_binary(a, self.scalar, "scalar_div")

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return out_grad / self.scalar


def divide_scalar(a: Tensor, scalar: Any) -> Tensor:
    return DivScalar(scalar)(a)


class Negate(TensorOp):
    def compute(self, a: NDArray) -> NDArray:
        return nd.neg(a)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return negate(out_grad)


def negate(a: Tensor) -> Tensor:
    return Negate()(a)


class Log(TensorOp):
    def compute(self, a: NDArray) -> NDArray:
        return a.log()

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return out_grad / node.inputs[0]


def log(a: Tensor) -> Tensor:
    return Log()(a)


class Exp(TensorOp):
    def compute(self, a: NDArray) -> NDArray:
        return a.exp()

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return out_grad * node  # exp' = exp, reusing the forward result


def exp(a: Tensor) -> Tensor:
    return Exp()(a)


class ReLU(TensorOp):
    def compute(self, a: NDArray) -> NDArray:
        return nd.relu(a)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        # The mask is piecewise constant: a constant Tensor keeps .grad differentiable.
        # relu's output is >= 0 and never NaN (fmax), so "> 0" is "not == 0": two
        # primitive kernels instead of the four of NDArray's composed ``>``.
        mask = Tensor.make_const((node.realize_cached_data() == 0.0) == 0.0)
        return out_grad * mask


def relu(a: Tensor) -> Tensor:
    return ReLU()(a)


class Tanh(TensorOp):
    def compute(self, a: NDArray) -> NDArray:
        return a.tanh()

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return out_grad * (1.0 - node * node)


def tanh(a: Tensor) -> Tensor:
    return Tanh()(a)


class Sigmoid(TensorOp):
    def compute(self, a: NDArray) -> NDArray:
        return nd.sigmoid(a)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return out_grad * (node * (1.0 - node))


def sigmoid(a: Tensor) -> Tensor:
    return Sigmoid()(a)


class MatMul(TensorOp):
    """2-D, and batched over leading axes that broadcast as in NumPy."""

    def compute(self, a: NDArray, b: NDArray) -> NDArray:
        sa, sb = a.shape, b.shape
        if len(sa) < 2 or len(sb) < 2:
            raise ValueError(f"matmul: both operands need at least 2 dimensions, got shapes {sa} and {sb}")
        if sa[-1] != sb[-2]:
            raise ValueError(
                f"matmul: shapes {sa} and {sb} are not aligned: a.shape[-1] = {sa[-1]} must equal "
                f"b.shape[-2] = {sb[-2]}"
            )
        if a.dtype != b.dtype or a.device is not b.device:
            check_same_device(a, b, "matmul")
            if a.dtype != b.dtype:
                a, b = nd.promote(a, b)
        if len(sa) > 2 and len(sb) > 2:
            try:
                broadcast_shapes(sa[:-2], sb[:-2], "matmul")
            except ValueError:
                raise ValueError(
                    f"matmul: the batch axes of shapes {sa} and {sb} cannot be broadcast together "
                    "(leading dimensions must be equal or 1)"
                ) from None
        return nd.matmul(a, b)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor | None, Tensor | None]:
        from .structure import transpose

        # an input without requires_grad gets None: its GEMM (the batch's, in training) is skipped
        a, b = node.inputs
        grad_a = unbroadcast(matmul(out_grad, transpose(b)), a.shape) if a.requires_grad else None
        grad_b = unbroadcast(matmul(transpose(a), out_grad), b.shape) if b.requires_grad else None
        return grad_a, grad_b


def matmul(a: Tensor, b: Tensor) -> Tensor:
    return MatMul()(a, b)


# Stateless op instances reused by Tensor operators (saves an allocation per op).
EWISE_ADD = EWiseAdd()
EWISE_MUL = EWiseMul()
EWISE_DIV = EWiseDiv()
NEGATE = Negate()
