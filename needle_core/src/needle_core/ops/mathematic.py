"""Elementwise arithmetic, activations and matmul, with their gradients.

Binary ops accept NumPy-broadcastable operands: the broadcast happens inside
``compute`` (no extra graph node) and ``gradient`` sums each adjoint back to its
input's shape, returning ``None`` for an input that does not require grad (nothing
could use that adjoint, so its GEMM or unbroadcast sum is skipped). The one-line
condition in each ``compute`` keeps equal shapes, dtypes and devices on the fast path.
"""

from __future__ import annotations

import math

from .. import backend_ndarray as nd
from ..autograd import Tensor, TensorOp
from ..backend_ndarray import NDArray
from ..backend_ndarray.ndarray import ewise_binary, scalar_binary
from .common import broadcast_shapes, check_same_device, unbroadcast
from .declare import binary_op, each_input, scalar_op, unary_op


# -- elementwise ops: one row each (declare.py builds the class and the function) ------
# gradient(op, out_grad, node) is the class's method; binary rows give one adjoint per input through
# each_input (computed only where required, summed back over broadcast axes).
def _power_scalar_compute(self: TensorOp, a: NDArray) -> NDArray:
    if self.scalar == 2.0:  # a square is one correctly rounded multiply: cheaper than pow
        return ewise_binary(a, a, "ewise_mul")
    return scalar_binary(a, self.scalar, "scalar_power")


def _power_scalar_gradient(op: TensorOp, out_grad: Tensor, node: Tensor) -> Tensor:
    s, a = op.scalar, node.inputs[0]
    if s == 0.0:  # d/da a**0 = 0 everywhere (avoids 0 * inf at a = 0)
        return out_grad * 0.0
    if s == 1.0:
        return out_grad
    if s == 2.0:
        return out_grad * (a * 2.0)
    return out_grad * (PowerScalar(s - 1.0)(a) * s)


def _divide_gradient(op: TensorOp, out_grad: Tensor, node: Tensor) -> tuple[Tensor | None, Tensor | None]:
    a, b = node.inputs
    grad_a = out_grad / b
    grad_b = unbroadcast(-(grad_a * node), b.shape) if b.requires_grad else None  # -g*a/b**2 = -(g/b)*(a/b)
    return (unbroadcast(grad_a, a.shape) if a.requires_grad else None), grad_b


def _relu_gradient(op: TensorOp, out_grad: Tensor, node: Tensor) -> Tensor:
    # The mask is piecewise constant: a constant Tensor keeps .grad differentiable.
    # relu's output is >= 0 and never NaN (fmax), so "> 0" is "not == 0": two
    # primitive kernels instead of the four of NDArray's composed ``>``.
    return out_grad * Tensor.make_const((node.realize_cached_data() == 0.0) == 0.0)


_POW_DOC = "``a ** b`` elementwise (NaN for negative bases with non-integer exponents, as in C)."

EWiseAdd, add = binary_op("EWiseAdd", "add", "ewise_add", each_input(lambda g, a, b, n: g, lambda g, a, b, n: g))
AddScalar, add_scalar = scalar_op("AddScalar", "add_scalar", "scalar_add", lambda op, g, node: g)
EWiseMul, multiply = binary_op("EWiseMul", "multiply", "ewise_mul",
                               each_input(lambda g, a, b, n: g * b, lambda g, a, b, n: g * a))
MulScalar, mul_scalar = scalar_op("MulScalar", "mul_scalar", "scalar_mul", lambda op, g, node: g * op.scalar)
EWisePow, power = binary_op("EWisePow", "power", "ewise_power",
                            each_input(lambda g, a, b, n: g * b * power(a, b - 1.0), lambda g, a, b, n: g * n * log(a)),
                            _POW_DOC)
PowerScalar, power_scalar = scalar_op("PowerScalar", "power_scalar", "scalar_power", _power_scalar_gradient,
                                      "``a ** scalar`` for any real exponent.", _power_scalar_compute)
EWiseDiv, divide = binary_op("EWiseDiv", "divide", "ewise_div", _divide_gradient)
DivScalar, divide_scalar = scalar_op("DivScalar", "divide_scalar", "scalar_div", lambda op, g, node: g / op.scalar)
Negate, negate = unary_op("Negate", "negate", "ewise_neg", lambda op, g, node: negate(g))
Log, log = unary_op("Log", "log", "ewise_log", lambda op, g, node: g / node.inputs[0])
Exp, exp = unary_op("Exp", "exp", "ewise_exp", lambda op, g, node: g * node)  # exp' = exp: the forward result
ReLU, relu = unary_op("ReLU", "relu", "ewise_relu", _relu_gradient)
Tanh, tanh = unary_op("Tanh", "tanh", "ewise_tanh", lambda op, g, node: g * (1.0 - node * node))
Sigmoid, sigmoid = unary_op("Sigmoid", "sigmoid", "ewise_sigmoid", lambda op, g, node: g * (node * (1.0 - node)))
Sin, sin = unary_op("Sin", "sin", "ewise_sin", lambda op, g, node: g * sin(node.inputs[0] + math.pi / 2))  # cos
# fmt: skip


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
        if len(a.shape) == 2 and len(b.shape) == 2:  # g b^T and a^T g: no Transpose nodes
            return (MatMulTransposed(False, True)(out_grad, b) if a.requires_grad else None,
                    MatMulTransposed(True, False)(a, out_grad) if b.requires_grad else None)
        grad_a = unbroadcast(matmul(out_grad, transpose(b)), a.shape) if a.requires_grad else None
        grad_b = unbroadcast(matmul(transpose(a), out_grad), b.shape) if b.requires_grad else None
        return grad_a, grad_b


def matmul(a: Tensor, b: Tensor) -> Tensor:
    return MatMul()(a, b)


class MatMulTransposed(MatMul):
    """``op(a) @ op(b)`` of 2-D operands, ``op`` transposing where ``ta``/``tb`` say:
    matmul's adjoints as one node each (the kernel reads a transposed operand in place,
    as it reads a Transpose node's view), closed under differentiation."""

    def __init__(self, ta: bool, tb: bool) -> None:
        self.ta = ta
        self.tb = tb

    def compute(self, a: NDArray, b: NDArray) -> NDArray:
        return nd.matmul(a.permute((1, 0)) if self.ta else a, b.permute((1, 0)) if self.tb else b)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor | None, Tensor | None]:
        # C = op(a) op(b): d op(a) = G op(b)^T and d op(b) = op(a)^T G, transposed back where op transposes
        a, b = node.inputs
        ta, tb = self.ta, self.tb
        grad_a = grad_b = None
        if a.requires_grad:
            grad_a = MatMulTransposed(tb, True)(b, out_grad) if ta else MatMulTransposed(False, not tb)(out_grad, b)
        if b.requires_grad:
            grad_b = MatMulTransposed(True, ta)(out_grad, a) if tb else MatMulTransposed(not ta, False)(a, out_grad)
        return grad_a, grad_b


# Stateless op instances reused by Tensor operators (saves an allocation per op).
EWISE_ADD = EWiseAdd()
EWISE_MUL = EWiseMul()
EWISE_DIV = EWiseDiv()
NEGATE = Negate()
