"""The NDArray layer (``needle.backend_ndarray``, the course's ``nd``).

``NDArray`` is a strided view over a device buffer; devices come from the
registry. Optional kernels are used when a device has them, else the fallbacks in
``composite``.
"""

from ..device import Device
from ..registry import all_devices, cpu, cpu_numpy, cuda, default_device, device, devices
from .composite import conv2d_nhwc, logsumexp, matmul, neg, optional_kernels_disabled, power, relu, sigmoid, sin, sqrt
from .dlpack import from_dlpack
from .dtypes import astype, promote
from .functions import broadcast_to, exp, flip, log, max, maximum, pad, permute, reshape, sum, tanh
from .ndarray import NDArray, array, empty, full
from .pickling import map_location
from .gather import scatter_add_rows, take_rows
from .recurrent import lstm_cell, lstm_cell_backward
from .conv_grad import col2im, conv2d_nhwc_grad_input, conv2d_nhwc_grad_weight, im2col
from .norm import batchnorm_backward, batchnorm_forward
from .softmax_loss import softmax_cross_entropy, softmax_cross_entropy_backward

__all__ = [
    "NDArray", "array", "empty", "full", "devices",
    "broadcast_to", "reshape", "permute", "maximum", "log", "exp", "tanh", "sum", "max", "flip", "pad",
    "power", "neg", "sqrt", "sin", "sigmoid", "relu", "matmul", "logsumexp", "conv2d_nhwc",
    "lstm_cell", "lstm_cell_backward", "take_rows", "scatter_add_rows",
    "conv2d_nhwc_grad_input", "conv2d_nhwc_grad_weight", "im2col", "col2im", "batchnorm_forward", "batchnorm_backward",
    "softmax_cross_entropy", "softmax_cross_entropy_backward",
    "optional_kernels_disabled", "promote", "astype", "map_location", "from_dlpack",
    "Device", "cpu", "cuda", "cpu_numpy", "default_device", "all_devices", "device",
]  # fmt: skip
