"""Training steps shared by the model rows (time per step) and the peak-RSS rows.

A *step builder* returns a no-argument callable running one training step: forward,
loss, backward, optimiser update, and waiting for the device (the loss is read).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from harness import Row

Step = Callable[[], None]


def needle_step(dev: Any, model: Any, X: np.ndarray, y: np.ndarray, optimiser: str = "adam") -> Step:
    """One needle step: ``model(X)`` (logits, or ``(logits, state)``), SoftmaxLoss on
    ``y`` flattened, backward, Adam (lr 1e-3, wd 1e-3) or SGD (lr 0.01)."""
    import needle as ndl
    import needle.nn as nn

    if optimiser == "adam":
        opt = ndl.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-3)
    else:
        opt = ndl.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = nn.SoftmaxLoss()
    tx = ndl.Tensor(X, device=dev, requires_grad=False)
    ty = ndl.Tensor(y.reshape(-1), device=dev, requires_grad=False)

    def step() -> None:
        opt.reset_grad()
        out = model(tx)
        logits = out[0] if isinstance(out, tuple) else out
        loss = loss_fn(logits, ty)
        loss.backward()
        opt.step()
        loss.numpy()  # wait for the device: a step is done when its loss is known

    return step


def torch_step(model: Any, X: np.ndarray, y: np.ndarray, optimiser: str = "adam") -> Step:
    """The same step in PyTorch CPU (CrossEntropyLoss = needle's SoftmaxLoss)."""
    import torch

    if optimiser == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-3)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    tx, ty = torch.from_numpy(X), torch.from_numpy(y.reshape(-1)).long()

    def step() -> None:
        opt.zero_grad()
        out = model(tx)
        logits = out[0] if isinstance(out, tuple) else out
        loss_fn(logits, ty).backward()
        opt.step()

    return step


def needle_step_rows(
    group: str,
    build_model: Callable[[Any], Any],
    X: np.ndarray,
    y: np.ndarray,
    baseline_key: str,
    note: Callable[[Any], str],
    optimiser: str = "adam",
    work: float | None = None,
    work_unit: str = "samples/s",
) -> list[Row]:
    """A row per enabled needle device timing one training step."""
    try:
        import needle as ndl
    except Exception as exc:
        return [Row(group, "needle", None, skip=f"import needle failed: {exc}")]
    rows = []
    for dev in ndl.all_devices():
        if not dev.enabled():
            continue
        subject = f"needle {dev.name}"
        try:
            np.random.seed(0)
            step = needle_step(dev, build_model(dev), X, y, optimiser)
        except Exception as exc:
            rows.append(Row(group, subject, None, skip=f"{type(exc).__name__}: {exc}"))
            continue
        rows.append(Row(group, subject, step, compare=(baseline_key,), work=work or len(X), work_unit=work_unit,
                        note=note(dev), interleave=True))
    return rows


def torch_step_row(group: str, model: Any, X: np.ndarray, y: np.ndarray, key: str, optimiser: str = "adam",
                   work: float | None = None, work_unit: str = "samples/s", note: str = "") -> Row:
    import torch

    return Row(group, "torch", torch_step(model, X, y, optimiser), key=key, work=work or len(X), work_unit=work_unit,
               note=f"{torch.get_num_threads()} threads" + (f", {note}" if note else ""), interleave=True)
