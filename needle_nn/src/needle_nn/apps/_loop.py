"""The one training/evaluation loop behind every course helper and ``needle train``."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .. import nn, optim


def train_step(model: nn.Module, loss_fn: nn.Module, opt: optim.Optimizer | None, X: Any, y: Any,
               clip: float | None = None) -> tuple[Any, Any]:
    """Forward, and when ``opt`` is given backward + step. Returns ``(logits, loss)``."""
    logits = model(X)
    loss = loss_fn(logits, y)
    if opt is not None:
        optimise(loss, opt, clip)
    return logits, loss


def optimise(loss: Any, opt: optim.Optimizer, clip: float | None = None) -> None:
    """One optimiser step on ``loss``: reset grads, backward, optional clipping, step."""
    opt.reset_grad()
    loss.backward()
    if clip is not None:
        opt.clip_grad_norm(clip)
    opt.step()


def run_epoch(batches: Iterable[tuple[Any, ...]], model: nn.Module, loss_fn: nn.Module,
              opt: optim.Optimizer | None = None, on_batch: Callable[[int, float, int], None] | None = None
              ) -> tuple[float, float]:
    """One pass over ``batches``; returns ``(accuracy, mean loss per sample)``.

    ``on_batch(size, loss, correct)`` is called after each batch (progress bars).
    """
    model.train() if opt is not None else model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    for X, y in batches:
        logits, loss = train_step(model, loss_fn, opt, X, y)
        size = y.shape[0]
        batch_loss = float(loss.numpy())
        batch_correct = int((logits.numpy().argmax(axis=1) == y.numpy()).sum())
        total_loss += batch_loss * size
        correct += batch_correct
        seen += size
        if on_batch is not None:
            on_batch(size, batch_loss, batch_correct)
    if seen == 0:
        return float("nan"), float("nan")
    return correct / seen, total_loss / seen
