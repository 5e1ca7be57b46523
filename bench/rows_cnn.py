"""One training step of the course's ResNet9 on CIFAR-shaped input (3×32×32, batch 128,
Adam lr 1e-3, weight decay 1e-3): forward, loss, backward, optimiser step. On every
available needle device, against the same network in PyTorch CPU when importable.
Throughput is samples/s; the ratio is time ÷ PyTorch time (below 1: faster)."""

from __future__ import annotations

import numpy as np
from harness import Row

GROUP = "ResNet9 3×32×32 batch-128 Adam step"
BATCH = 128
TORCH_KEY = "cnn torch resnet9"


def _batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((BATCH, 3, 32, 32), dtype=np.float32), rng.integers(0, 10, BATCH)


def _torch_row() -> Row:
    try:
        import torch
        from torch import nn
    except ImportError:
        skip = "PyTorch not installed (pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu)"
        return Row(GROUP, "torch", None, key=TORCH_KEY, skip=skip)

    def conv_bn(a: int, b: int, k: int, s: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(a, b, k, s, padding=k // 2), nn.BatchNorm2d(b), nn.ReLU())

    class Residual(nn.Module):
        def __init__(self, fn: nn.Module) -> None:
            super().__init__()
            self.fn = fn

        def forward(self, x):
            return self.fn(x) + x

    torch.manual_seed(0)
    model = nn.Sequential(
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
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    X, y = _batch()
    tx, ty = torch.from_numpy(X), torch.from_numpy(y).long()

    def step() -> None:
        opt.zero_grad()
        loss_fn(model(tx), ty).backward()
        opt.step()

    return Row(GROUP, "torch", step, key=TORCH_KEY, work=BATCH, work_unit="samples/s",
               note=f"{torch.get_num_threads()} threads")


def _needle_rows() -> list[Row]:
    try:
        import needle as ndl
        import needle.nn as nn
        from needle.apps.models import ResNet9
    except Exception as exc:
        return [Row(GROUP, "needle", None, skip=f"import needle failed: {exc}")]
    X, y = _batch()
    out = []
    for dev in ndl.all_devices():
        if not dev.enabled():
            continue
        subject = f"needle {dev.name}"
        try:
            np.random.seed(0)
            model = ResNet9(device=dev)
            opt = ndl.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-3)
            loss_fn = nn.SoftmaxLoss()
            tx = ndl.Tensor(X, device=dev, requires_grad=False)
            ty = ndl.Tensor(y, device=dev, requires_grad=False)
        except Exception as exc:
            out.append(Row(GROUP, subject, None, skip=f"{type(exc).__name__}: {exc}"))
            continue

        def step(model=model, opt=opt, loss_fn=loss_fn, tx=tx, ty=ty) -> None:
            opt.reset_grad()
            loss = loss_fn(model(tx), ty)
            loss.backward()
            opt.step()
            loss.numpy()  # a step is done when its loss is known

        conv = "conv2d_nhwc kernel" if dev.conv2d_nhwc is not None else "conv via im2col fallback"
        out.append(Row(GROUP, subject, step, compare=(TORCH_KEY,), work=BATCH, work_unit="samples/s", note=conv))
    return out


def rows() -> list[Row]:
    return [_torch_row(), *_needle_rows()]
