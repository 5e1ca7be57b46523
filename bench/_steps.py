"""One Adam training step per needle device: the shared body of the training-step rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from harness import Row


def needle_step_rows(
    group: str,
    build_model: Callable[[Any], Any],
    X: np.ndarray,
    y: np.ndarray,
    baseline_key: str,
    note: Callable[[Any], str],
) -> list[Row]:
    """A row per enabled needle device timing forward + SoftmaxLoss + backward + Adam."""
    try:
        import needle as ndl
        import needle.nn as nn
    except Exception as exc:
        return [Row(group, "needle", None, skip=f"import needle failed: {exc}")]
    rows = []
    for dev in ndl.all_devices():
        if not dev.enabled():
            continue
        subject = f"needle {dev.name}"
        try:
            np.random.seed(0)
            model = build_model(dev)
            opt = ndl.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-3)
            loss_fn = nn.SoftmaxLoss()
            tx = ndl.Tensor(X, device=dev, requires_grad=False)
            ty = ndl.Tensor(y, device=dev, requires_grad=False)
        except Exception as exc:
            rows.append(Row(group, subject, None, skip=f"{type(exc).__name__}: {exc}"))
            continue

        def step(model=model, opt=opt, loss_fn=loss_fn, tx=tx, ty=ty) -> None:
            opt.reset_grad()
            loss = loss_fn(model(tx), ty)
            loss.backward()
            opt.step()
            loss.numpy()  # wait for the device: a step is done when its loss is known

        rows.append(Row(group, subject, step, compare=(baseline_key,), work=len(X), work_unit="samples/s",
                        note=note(dev)))
    return rows


def torch_step_row(group: str, model: Any, X: np.ndarray, y: np.ndarray, key: str) -> Row:
    """The same Adam step in PyTorch CPU (CrossEntropyLoss = needle's SoftmaxLoss)."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    tx, ty = torch.from_numpy(X), torch.from_numpy(y).long()

    def step() -> None:
        opt.zero_grad()
        loss_fn(model(tx), ty).backward()
        opt.step()

    return Row(group, "torch", step, key=key, work=len(X), work_unit="samples/s",
               note=f"{torch.get_num_threads()} threads")
