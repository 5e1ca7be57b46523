"""MNIST in the IDX format (gzip-compressed, as distributed by LeCun et al.)."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .dataset import Dataset

_IMAGES_MAGIC = 2051
_LABELS_MAGIC = 2049
_IMAGES_FORMAT = ("a gzip-compressed IDX image file (big-endian header: magic 2051, count, rows, cols; "
                  "then uint8 pixels)")
_LABELS_FORMAT = "a gzip-compressed IDX label file (big-endian header: magic 2049, count; then uint8 labels)"


def _read(path: str | os.PathLike, what: str) -> bytes:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"MNIST file not found: {path!r}; expected {what}")
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"cannot read MNIST file {path!r} ({exc}); expected {what}") from exc


def _header(buf: bytes, path: str, magic: int, words: int, what: str) -> list[int]:
    if len(buf) < 4 * words:
        raise ValueError(f"MNIST file {path!r} is truncated ({len(buf)} bytes); expected {what}")
    header = [int.from_bytes(buf[4 * i : 4 * i + 4], "big") for i in range(words)]
    if header[0] != magic:
        raise ValueError(f"MNIST file {path!r} has magic number {header[0]}, not {magic}; expected {what}")
    return header


def read_idx_images(path: str | os.PathLike) -> np.ndarray:
    """``(n, rows*cols)`` uint8 pixels."""
    buf = _read(path, _IMAGES_FORMAT)
    _, n, rows, cols = _header(buf, os.fspath(path), _IMAGES_MAGIC, 4, _IMAGES_FORMAT)
    if len(buf) != 16 + n * rows * cols:
        raise ValueError(
            f"MNIST file {os.fspath(path)!r} holds {len(buf) - 16} pixel bytes, but its header says "
            f"{n}x{rows}x{cols}={n * rows * cols}; expected {_IMAGES_FORMAT}"
        )
    return np.frombuffer(buf, dtype=np.uint8, offset=16).reshape(n, rows * cols)


def read_idx_labels(path: str | os.PathLike) -> np.ndarray:
    """``(n,)`` uint8 labels."""
    buf = _read(path, _LABELS_FORMAT)
    _, n = _header(buf, os.fspath(path), _LABELS_MAGIC, 2, _LABELS_FORMAT)
    if len(buf) != 8 + n:
        raise ValueError(
            f"MNIST file {os.fspath(path)!r} holds {len(buf) - 8} labels, but its header says {n}; "
            f"expected {_LABELS_FORMAT}"
        )
    return np.frombuffer(buf, dtype=np.uint8, offset=8).copy()


def load_mnist(image_filename: str | os.PathLike, label_filename: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(X (n, 784) float32 in [0, 1], y (n,) uint8)``; the counts must agree."""
    X = read_idx_images(image_filename).astype(np.float32) / np.float32(255.0)
    y = read_idx_labels(label_filename)
    if len(X) != len(y):
        raise ValueError(
            f"MNIST files disagree: {os.fspath(image_filename)!r} has {len(X)} images but "
            f"{os.fspath(label_filename)!r} has {len(y)} labels; pass an image file and its matching label file"
        )
    return X, y


class MNISTDataset(Dataset):
    """Images as flat ``(784,)`` float32 rows in [0, 1]; transforms see ``(28, 28, 1)`` images."""

    def __init__(self, image_filename: str | os.PathLike, label_filename: str | os.PathLike,
                 transforms: Sequence[Callable[[np.ndarray], np.ndarray]] | None = None) -> None:
        super().__init__(transforms)
        self.images, self.labels = load_mnist(image_filename, label_filename)

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: np.ndarray,
                    transforms: Sequence[Callable[[np.ndarray], np.ndarray]] | None = None) -> MNISTDataset:
        """A dataset over already-loaded arrays (e.g. a train/validation split)."""
        self = cls.__new__(cls)
        Dataset.__init__(self, transforms)
        self.images, self.labels = images, labels
        return self

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: Any) -> tuple[np.ndarray, np.ndarray]:
        X, y = self.images[index], self.labels[index]
        if self.transforms:
            batch = X.reshape(-1, 28, 28, 1)
            X = np.stack([self.apply_transforms(img).reshape(784) for img in batch]).reshape(X.shape)
        return X, y


# One class identity across importlib.reload / IPython %autoreload (see needle_core._reload).
from needle_core._reload import keep_classes  # noqa: E402

keep_classes(globals())
