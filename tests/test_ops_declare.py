"""Elementwise ops declared from rows (needle_core/ops/declare.py): real TensorOp
subclasses under the course's names, and a clear error for a row the kernel table lacks."""

from __future__ import annotations

import pytest
from needle_core.autograd import Tensor, TensorOp
from needle_core.kernels import ELEMENTWISE_BY_NAME
from needle_core.ops import declare, mathematic

COURSE_CLASSES = {
    "EWiseAdd": "add", "AddScalar": "add_scalar", "EWiseMul": "multiply", "MulScalar": "mul_scalar",
    "EWisePow": "power", "PowerScalar": "power_scalar", "EWiseDiv": "divide", "DivScalar": "divide_scalar",
    "Negate": "negate", "Log": "log", "Exp": "exp", "ReLU": "relu", "Tanh": "tanh", "Sigmoid": "sigmoid",
    "Sin": "sin",
}  # fmt: skip


@pytest.mark.parametrize("cls_name", COURSE_CLASSES)
def test_declared_ops_are_tensor_op_classes_with_the_course_names(cls_name):
    cls, fn = getattr(mathematic, cls_name), getattr(mathematic, COURSE_CLASSES[cls_name])
    assert isinstance(cls, type) and issubclass(cls, TensorOp)
    assert (cls.__name__, cls.__qualname__, cls.__module__) == (cls_name, cls_name, "needle_core.ops.mathematic")
    assert fn.__name__ == COURSE_CLASSES[cls_name]
    assert {"compute", "gradient"} <= set(vars(cls))


@pytest.mark.parametrize(
    ("factory", "kernel"),
    [(declare.unary_op, "ewise_nope"), (declare.unary_op, "ewise_add"), (declare.binary_op, "scalar_add"),
     (declare.scalar_op, "ewise_exp")],
)  # fmt: skip
def test_a_row_missing_from_the_kernel_table_is_named(factory, kernel):
    with pytest.raises(ValueError, match=rf"{kernel!r} is not a \w+ row of needle_core.kernels.ELEMENTWISE"):
        factory("Nope", "nope", kernel, lambda op, g, node: g)


def test_a_declared_op_computes_its_row_and_gradient():
    ExpAgain, exp_again = declare.unary_op("ExpAgain", "exp_again", "ewise_exp", lambda op, g, node: g * node)
    assert ELEMENTWISE_BY_NAME["ewise_exp"].kind == "unary"
    x = Tensor([0.0, 1.0], device="cpu_numpy", requires_grad=True)
    y = exp_again(x)
    assert isinstance(y.op, ExpAgain) and y.op.__class__ is not mathematic.Exp
    y.sum().backward()
    assert x.grad.numpy().tolist() == pytest.approx([1.0, 2.718281828], rel=1e-6)
