"""``needle train --plot``: loss and accuracy per epoch, with what was trained in the title."""

from __future__ import annotations

from typing import Any

import numpy as np


def curves_figure(history: dict[str, list], title: str) -> Any:
    """A matplotlib Figure of train/validation loss and accuracy; x-ticks at whole epochs."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    epochs = np.arange(1, len(history["train_loss"]) + 1)
    fig = Figure(figsize=(10, 4.4))
    ax_loss, ax_acc = fig.subplots(1, 2)
    for split in ("train", "val"):
        ax_loss.plot(epochs, history[f"{split}_loss"], marker="o", label=split)
        ax_acc.plot(epochs, 100 * np.asarray(history[f"{split}_acc"]), marker="o", label=split)
    ax_loss.set(xlabel="epoch", ylabel="loss (per sample)", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no "epoch 1.5"
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def write_curves(path: str, history: dict[str, list], title: str) -> None:
    curves_figure(history, title).savefig(path, dpi=100)
