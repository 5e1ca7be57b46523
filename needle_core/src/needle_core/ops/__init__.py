"""Every needle op: ``ndl.ops.<name>`` (and ``ndl.<name>``), with the course's op classes.

Families live in one file each: ``mathematic`` (elementwise, activations, matmul),
``reduction`` (summation, max), ``logarithmic`` (logsumexp, logsoftmax, softmax),
``structure`` (shape/layout), ``tuples`` (tuple-valued nodes), ``conv``,
``recurrent`` (the fused LSTM cell) and ``gather`` (row lookups: embeddings).
"""

from .common import as_scalar  # noqa: F401 - qualified use: ops.as_scalar
from .conv import Conv, conv
from .logarithmic import LogSoftmax, LogSumExp, Softmax, logsoftmax, logsumexp, softmax
from .mathematic import (  # noqa: F401 - shared instances: ops.EWISE_ADD, ...
    EWISE_ADD,
    EWISE_DIV,
    EWISE_MUL,
    NEGATE,
    AddScalar,
    DivScalar,
    EWiseAdd,
    EWiseDiv,
    EWiseMul,
    EWisePow,
    Exp,
    Log,
    MatMul,
    MulScalar,
    Negate,
    PowerScalar,
    ReLU,
    Sigmoid,
    Sin,
    Tanh,
    add,
    add_scalar,
    divide,
    divide_scalar,
    exp,
    log,
    matmul,
    mul_scalar,
    multiply,
    negate,
    power,
    power_scalar,
    relu,
    sigmoid,
    sin,
    tanh,
)
from .reduction import Max, Summation, max, summation
from .structure import (
    BroadcastTo,
    Crop,
    Dilate,
    Flip,
    Pad,
    Permute,
    Reshape,
    Split,
    Stack,
    Transpose,
    UnDilate,
    broadcast_to,
    crop,
    dilate,
    flip,
    pad,
    permute,
    reshape,
    split,
    stack,
    transpose,
    undilate,
)
from .gather import ScatterAddRows, TakeRows, take_rows
from .recurrent import LSTMCell, LSTMCellBackward, lstm_cell
from .softmax_loss import SoftmaxCrossEntropy, SoftmaxCrossEntropyBackward, softmax_cross_entropy
from .tuples import FusedAddScalars, MakeTensorTuple, TupleGetItem, fused_add_scalars, make_tuple, tuple_get_item

# ``from needle.ops import *`` (and the ``needle`` facade) exports the course's op
# functions and classes; helpers (as_scalar, the shared instances) stay qualified.
__all__ = [
    # functions (docs/api.md section 1)
    "add", "add_scalar", "multiply", "mul_scalar", "power", "power_scalar", "divide",
    "divide_scalar", "transpose", "reshape", "broadcast_to", "summation", "matmul",
    "negate", "log", "exp", "relu", "tanh", "sigmoid", "max", "stack", "split", "flip",
    "dilate", "undilate", "conv", "logsoftmax", "logsumexp", "make_tuple",
    "tuple_get_item", "fused_add_scalars", "lstm_cell", "take_rows", "softmax_cross_entropy",
    # extras used by conv's gradient and handy for nn
    "permute", "pad", "crop", "softmax", "sin",
    # op classes (course names)
    "EWiseAdd", "AddScalar", "EWiseMul", "MulScalar", "EWisePow", "PowerScalar",
    "EWiseDiv", "DivScalar", "Negate", "Log", "Exp", "ReLU", "Tanh", "Sigmoid", "Sin",
    "Transpose", "Permute", "Reshape", "BroadcastTo", "Summation", "Max", "MatMul",
    "LogSoftmax", "LogSumExp", "Softmax", "Stack", "Split", "Flip", "Dilate", "UnDilate",
    "Pad", "Crop", "Conv", "MakeTensorTuple", "TupleGetItem", "FusedAddScalars",
    "LSTMCell", "LSTMCellBackward", "TakeRows", "ScatterAddRows", "SoftmaxCrossEntropy",
    "SoftmaxCrossEntropyBackward",
]  # fmt: skip
