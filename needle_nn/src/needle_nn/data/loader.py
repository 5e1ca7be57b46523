"""``DataLoader``: batches of a Dataset as Tensors, reshuffled every epoch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from needle_core.autograd import Tensor

from .dataset import Dataset


class DataLoader:
    """Iterates over ``dataset`` in batches; each batch is a tuple of Tensors.

    Every ``iter()`` draws a new order from ``np.random.permutation`` when
    ``shuffle`` is set. ``device``/``dtype`` (needle extensions) say where the
    batches go (default: the default device; dtype as ``Tensor`` converts).
    Batches need no gradient. ``resume(order, batch)`` makes the next ``iter()``
    continue a saved epoch instead of drawing a new one (checkpoints use it).

    ``sampler`` (e.g. ``needle.distributed.DistributedSampler``) replaces how an epoch's
    order is drawn and cut into batches: ``sampler.order(n, shuffle)`` returns the order
    of all ``n`` samples, ``sampler.batches(order, batch_size)`` this process's index
    batches, ``sampler.num_batches(n, batch_size)`` their count. ``order`` stays the
    whole epoch's order, so checkpoints do not depend on the sampler.
    """

    def __init__(self, dataset: Dataset, batch_size: int | None = 1, shuffle: bool = False, device: Any = None,
                 dtype: str | None = None, sampler: Any = None) -> None:
        self.dataset = dataset
        self.shuffle = shuffle
        self.batch_size = batch_size
        self.device = device
        self.dtype = dtype
        self.sampler = sampler
        self.order: np.ndarray | None = None  # this epoch's sample order
        self.batch_index = 0  # index of the next batch to yield
        self._resume: tuple[np.ndarray, int] | None = None

    def __len__(self) -> int:
        n, bs = len(self.dataset), self.batch_size or len(self.dataset)
        if self.sampler is not None:
            return self.sampler.num_batches(n, bs)
        return (n + bs - 1) // bs

    def resume(self, order: np.ndarray, batch_index: int) -> None:
        self._resume = (np.asarray(order), int(batch_index))

    def __iter__(self) -> Iterator[tuple[Tensor, ...]]:
        n = len(self.dataset)
        bs = self.batch_size or n
        if self._resume is not None:
            order, start = self._resume
            self._resume = None
        elif self.sampler is not None:
            order, start = self.sampler.order(n, self.shuffle), 0
        else:
            order = np.random.permutation(n) if self.shuffle else np.arange(n)
            start = 0
        self.order = order  # drawn here, at iter(), as the course does
        if self.sampler is not None:
            return self._batches(self.sampler.batches(order, bs), start)
        return self._batches(np.array_split(order, range(bs, n, bs)), start)

    def _batches(self, batches: list[np.ndarray], start: int) -> Iterator[tuple[Tensor, ...]]:
        for i in range(start, len(batches)):
            self.batch_index = i + 1
            samples = self.dataset[batches[i]]
            yield tuple(Tensor(a, device=self.device, dtype=self.dtype, requires_grad=False) for a in samples)


# One class identity across importlib.reload / IPython %autoreload (see needle_core._reload).
from needle_core._reload import keep_classes  # noqa: E402

keep_classes(globals())
