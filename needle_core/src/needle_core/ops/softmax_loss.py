"""Softmax cross-entropy as one graph node: the per-row loss ``logsumexp(logits) -
logits[label]``, whose gradient is one more node computing ``softmax - onehot`` in a
single pass (the device's fused kernels when it has them). The composed loss holds
several ``(rows, classes)`` temporaries at once in its backward pass; this holds one."""

from __future__ import annotations

from .. import backend_ndarray as nd
from ..autograd import Tensor, TensorOp
from ..backend_ndarray import NDArray


class SoftmaxCrossEntropy(TensorOp):
    """``(rows,)`` losses of logits ``(rows, classes)`` against labels ``(rows,)``."""

    def compute(self, logits: NDArray, labels: NDArray) -> NDArray:
        return nd.softmax_cross_entropy(logits, labels)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor, None]:
        logits, labels = node.inputs
        return SoftmaxCrossEntropyBackward()(logits, labels, out_grad), None


class SoftmaxCrossEntropyBackward(TensorOp):
    """``out_grad[r] * (softmax(logits[r]) - onehot(labels[r]))``."""

    def compute(self, logits: NDArray, labels: NDArray, out_grad: NDArray) -> NDArray:
        return nd.softmax_cross_entropy_backward(logits, labels, out_grad)

    def gradient(self, out_grad: Tensor, node: Tensor) -> None:
        raise NotImplementedError(
            "second derivatives through softmax_cross_entropy are not implemented; compose the loss "
            "from ops.logsumexp and a label lookup for a twice-differentiable graph"
        )


def softmax_cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Per-row ``logsumexp(logits[r]) - logits[r, labels[r]]`` for logits ``(rows, classes)``
    and whole-number class labels ``(rows,)`` stored in the logits' dtype on their device;
    differentiable in ``logits`` only."""
    return SoftmaxCrossEntropy()(logits, labels.detach() if labels.requires_grad else labels)
