"""Image augmentations on single ``(H, W, C)`` NumPy images, drawn from ``np.random``."""

from __future__ import annotations

import numpy as np


class Transform:
    def __call__(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class RandomFlipHorizontal(Transform):
    """Flips the W axis with probability ``p`` (one ``np.random.rand()`` draw per call)."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, img: np.ndarray) -> np.ndarray:
        flip = np.random.rand() < self.p
        return img[:, ::-1, :] if flip else img


class RandomCrop(Transform):
    """Zero-pads H and W by ``padding`` and crops the window shifted by a random offset."""

    def __init__(self, padding: int = 3) -> None:
        self.padding = padding

    def __call__(self, img: np.ndarray) -> np.ndarray:
        shift_x, shift_y = np.random.randint(low=-self.padding, high=self.padding + 1, size=2)
        p = self.padding
        h, w = img.shape[0], img.shape[1]
        padded = np.pad(img, [(p, p), (p, p)] + [(0, 0)] * (img.ndim - 2))
        return padded[p + shift_x : p + shift_x + h, p + shift_y : p + shift_y + w]


# One class identity across importlib.reload / IPython %autoreload (see needle_core._reload).
from needle_core._reload import keep_classes  # noqa: E402

keep_classes(globals())
