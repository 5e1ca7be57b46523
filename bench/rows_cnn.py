"""One training step of the course's ResNet9 on CIFAR-shaped input (3×32×32, batch 128,
Adam lr 1e-3, weight decay 1e-3): forward, loss, backward, optimiser step. On every
available needle device, against the same network in PyTorch CPU when importable.
Throughput is samples/s; the ratio is time ÷ PyTorch time (below 1: faster).
Also one conv layer's forward + backward (input and weight adjoints) for three of
ResNet9's conv shapes (strides 4, 2 and 1), to see where a step's time goes."""

from __future__ import annotations

import numpy as np
from _steps import needle_step_rows, torch_step_row
from harness import Row

GROUP = "ResNet9 3×32×32 batch-128 Adam step"
BATCH = 128
TORCH_KEY = "cnn torch resnet9"


OPTIMISER = "adam"
TORCH_HINT = "PyTorch not installed (pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)"


def batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((BATCH, 3, 32, 32), dtype=np.float32), rng.integers(0, 10, BATCH)


def needle_model(dev):
    from needle.apps.models import ResNet9

    return ResNet9(device=dev)


def torch_model():
    import torch
    from _torch_blocks import Residual
    from torch import nn

    def conv_bn(a: int, b: int, k: int, s: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(a, b, k, s, padding=k // 2), nn.BatchNorm2d(b), nn.ReLU())

    torch.manual_seed(0)
    return nn.Sequential(
        conv_bn(3, 16, 7, 4),
        conv_bn(16, 32, 3, 2),
        Residual(nn.Sequential(conv_bn(32, 32, 3, 1), conv_bn(32, 32, 3, 1))),
        conv_bn(32, 64, 3, 2),
        conv_bn(64, 128, 3, 2),
        Residual(nn.Sequential(conv_bn(128, 128, 3, 1), conv_bn(128, 128, 3, 1))),
        nn.Flatten(),
        nn.Linear(128, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )


def _torch_row() -> Row:
    try:
        model = torch_model()
    except ImportError:
        return Row(GROUP, "torch", None, key=TORCH_KEY, skip=TORCH_HINT)
    return torch_step_row(GROUP, model, *batch(), TORCH_KEY)


def _needle_rows() -> list[Row]:
    def kernel_used(dev) -> str:
        if dev.conv2d_nhwc is None:
            return "conv via im2col fallback"
        return "conv2d_nhwc_padded kernel" if dev.conv2d_nhwc_padded is not None else "conv2d_nhwc kernel"

    return needle_step_rows(GROUP, needle_model, *batch(), TORCH_KEY, kernel_used)


# (N, C_in, H, W), kernel, C_out, stride: ResNet9's first, second and third convs
LAYERS = [((BATCH, 3, 32, 32), 7, 16, 4), ((BATCH, 16, 8, 8), 3, 32, 2), ((BATCH, 32, 4, 4), 3, 32, 1)]


def _layer_group(shape: tuple[int, ...], k: int, c_out: int, stride: int) -> str:
    n, c, h, w = shape
    return f"conv fwd+bwd {n}×{c}×{h}×{w} → {c_out}, k{k} s{stride}"


def _layer_arrays(shape: tuple[int, ...], k: int, c_out: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)  # NCHW input, (k, k, C_in, C_out) weight as needle stores it
    return rng.standard_normal(shape, dtype=np.float32), rng.standard_normal((k, k, shape[1], c_out), dtype=np.float32)


def _layer_rows() -> list[Row]:
    out: list[Row] = []
    try:
        import torch
    except ImportError:
        torch = None
    try:
        import needle as ndl

        devices = [d for d in ndl.all_devices() if d.enabled()]
    except Exception:
        devices = []
    for shape, k, c_out, stride in LAYERS:
        group, key = _layer_group(shape, k, c_out, stride), f"cnn torch {shape} k{k} s{stride}"
        x, w = _layer_arrays(shape, k, c_out)
        if torch is None:
            out.append(Row(group, "torch", None, key=key, skip="PyTorch not installed"))
        else:
            tx = torch.from_numpy(x).requires_grad_()
            tw = torch.from_numpy(w.transpose(3, 2, 0, 1).copy()).requires_grad_()

            def torch_step(tx=tx, tw=tw, stride=stride, k=k) -> None:
                torch.nn.functional.conv2d(tx, tw, stride=stride, padding=k // 2).sum().backward()

            out.append(Row(group, "torch", torch_step, key=key, work=shape[0], work_unit="samples/s", interleave=True))
        for dev in devices:
            nx = ndl.Tensor(x.transpose(0, 2, 3, 1).copy(), device=dev)  # NHWC, as nn.Conv feeds conv
            nw = ndl.Tensor(w, device=dev)

            def step(nx=nx, nw=nw, stride=stride, k=k) -> None:
                ndl.conv(nx, nw, stride, k // 2).sum().backward()
                nx.grad.numpy()  # done when both adjoints exist
                nw.grad.numpy()

            out.append(Row(group, f"needle {dev.name}", step, compare=(key,), work=shape[0], work_unit="samples/s",
                           interleave=True))
    return out


def rows() -> list[Row]:
    return [_torch_row(), *_needle_rows(), *_layer_rows()]
