"""``Dataset`` (the course's base class) and ``NDArrayDataset``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


class Dataset:
    """An indexable collection of samples; ``transforms`` are applied per sample.

    ``__getitem__`` takes an int, a slice or an index array and returns a tuple of
    NumPy arrays (an index array or slice gives a batch).
    """

    def __init__(self, transforms: Sequence[Callable[[np.ndarray], np.ndarray]] | None = None) -> None:
        self.transforms = transforms

    def __getitem__(self, index: Any) -> tuple[np.ndarray, ...]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def apply_transforms(self, x: np.ndarray) -> np.ndarray:
        if self.transforms is not None:
            for transform in self.transforms:
                x = transform(x)
        return x


class NDArrayDataset(Dataset):
    """Samples are the rows of the given arrays: ``dataset[i] == tuple(a[i] for a in arrays)``."""

    def __init__(self, *arrays: np.ndarray) -> None:
        super().__init__()
        if not arrays:
            raise ValueError("NDArrayDataset needs at least one array")
        n = len(arrays[0])
        for i, a in enumerate(arrays):
            if len(a) != n:
                raise ValueError(
                    f"NDArrayDataset arrays must have the same length: array 0 has {n}, array {i} has {len(a)}"
                )
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, i: Any) -> tuple[np.ndarray, ...]:
        return tuple(a[i] for a in self.arrays)


# One class identity across importlib.reload / IPython %autoreload (see needle_core._reload).
from needle_core._reload import keep_classes  # noqa: E402

keep_classes(globals())
