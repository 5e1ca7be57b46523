"""The layers, one family per file."""

from .basic import Dropout, Flatten, Identity, Linear, ReLU, Residual, Sequential, Sigmoid, SoftmaxLoss, Tanh
from .conv import Conv
from .norm import BatchNorm1d, BatchNorm2d, LayerNorm1d
from .sequence import LSTM, RNN, Embedding, LSTMCell, RNNCell

__all__ = [
    "BatchNorm1d", "BatchNorm2d", "Conv", "Dropout", "Embedding", "Flatten", "Identity", "LSTM", "LSTMCell",
    "LayerNorm1d", "Linear", "RNN", "RNNCell", "ReLU", "Residual", "Sequential", "Sigmoid", "SoftmaxLoss", "Tanh",
]
