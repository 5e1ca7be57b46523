"""``Conv``: a 2-D convolution over NCHW tensors with "same" padding."""

from __future__ import annotations

from typing import Any

from needle_core.autograd import Tensor

from needle_core import init, ops

from ..module import Module, Parameter


class Conv(Module):
    """NCHW in and out; square kernel, padding ``kernel_size // 2``.

    ``weight`` is ``(k, k, in, out)`` (the layout of ``ops.conv``, which works on NHWC);
    ``bias`` is ``(out,)``. Draw order: weight, then bias, as in the course.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], stride: int = 1,
                 bias: bool = True, device: Any = None, dtype: str = "float32") -> None:
        super().__init__()
        if isinstance(kernel_size, tuple):
            if kernel_size[0] != kernel_size[1]:
                raise ValueError(f"Conv supports square kernels only, got kernel_size={kernel_size}")
            kernel_size = kernel_size[0]
        k = kernel_size
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = k
        self.stride = stride
        self.padding = k // 2
        fan_in = in_channels * k * k
        self.weight = Parameter(init.kaiming_uniform(
            fan_in, out_channels * k * k, shape=(k, k, in_channels, out_channels), device=device, dtype=dtype))
        self.bias = None
        if bias:
            bound = 1.0 / fan_in**0.5
            self.bias = Parameter(init.rand(out_channels, low=-bound, high=bound, device=device, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        nhwc = ops.permute(x, (0, 2, 3, 1))  # a view, as the course's two transposes, in one op
        out = ops.conv(nhwc, self.weight, stride=self.stride, padding=self.padding)
        if self.bias is not None:
            out = out + self.bias  # (out,) broadcasts over N, H, W inside the add
        return ops.permute(out, (0, 3, 1, 2))

    def __repr__(self) -> str:
        return f"Conv({self.in_channels}, {self.out_channels}, {self.kernel_size}, stride={self.stride})"


# One class identity across importlib.reload / IPython %autoreload (see needle_core._reload).
from needle_core._reload import keep_classes  # noqa: E402

keep_classes(globals())
