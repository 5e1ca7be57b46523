"""CIFAR-10 in its "python version" layout (pickled batch dicts, as distributed)."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .dataset import Dataset

_FORMAT = ("the CIFAR-10 python batches (data_batch_1..5 and test_batch, each a pickled dict with "
           "b'data' (n, 3072) uint8 and b'labels'), e.g. from cifar-10-python.tar.gz")


def _load_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CIFAR-10 file not found: {path!r}; expected {_FORMAT}")
    try:
        with open(path, "rb") as f:
            # The official files are pickles; they hold only arrays and lists.
            batch = pickle.load(f, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.uint8)
    except Exception as exc:  # noqa: BLE001 - any decoding failure means a corrupt file
        raise ValueError(f"cannot read CIFAR-10 file {path!r} ({exc!r}); expected {_FORMAT}") from exc
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise ValueError(
            f"CIFAR-10 file {path!r} has data of shape {data.shape} and {len(labels)} labels; expected {_FORMAT}"
        )
    return data, labels


class CIFAR10Dataset(Dataset):
    """Items ``(3, 32, 32)`` float32 in [0, 1] and a label. ``p`` is accepted for the course's signature."""

    def __init__(self, base_folder: str | os.PathLike, train: bool, p: float | None = 0.5,
                 transforms: Sequence[Callable[[np.ndarray], np.ndarray]] | None = None) -> None:
        super().__init__(transforms)
        base = os.fspath(base_folder)
        names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        parts = [_load_batch(os.path.join(base, name)) for name in names]
        self.X = np.concatenate([d for d, _ in parts]).reshape(-1, 3, 32, 32).astype(np.float32) / np.float32(255.0)
        self.y = np.concatenate([lab for _, lab in parts])

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, index: Any) -> tuple[np.ndarray, np.ndarray]:
        X, y = self.X[index], self.y[index]
        if self.transforms:
            if X.ndim == 4:
                X = np.stack([self.apply_transforms(img) for img in X])
            else:
                X = self.apply_transforms(X)
        return X, y


# One class identity across importlib.reload / IPython %autoreload (see needle_core._reload).
from needle_core._reload import keep_classes  # noqa: E402

keep_classes(globals())
