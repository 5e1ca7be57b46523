"""``needle.nn``: Module, Parameter and the course's layers (docs/api.md §1, §4, §5)."""

from .module import Module, Parameter
from .modules import (
    LSTM,
    RNN,
    BatchNorm1d,
    BatchNorm2d,
    Conv,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    LayerNorm1d,
    Linear,
    LSTMCell,
    ReLU,
    Residual,
    RNNCell,
    Sequential,
    Sigmoid,
    SoftmaxLoss,
    Tanh,
)

__all__ = [
    "BatchNorm1d", "BatchNorm2d", "Conv", "Dropout", "Embedding", "Flatten", "Identity", "LSTM", "LSTMCell",
    "LayerNorm1d", "Linear", "Module", "Parameter", "RNN", "RNNCell", "ReLU", "Residual", "Sequential", "Sigmoid",
    "SoftmaxLoss", "Tanh",
]
