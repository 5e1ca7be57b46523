"""``DistributedSampler``: each rank's share of every batch of a one-process run.

Plugged into ``needle.data.DataLoader(dataset, batch_size=B, shuffle=True,
sampler=DistributedSampler())``, where ``B`` is the *global* batch: every epoch draws
one order of the whole dataset, identical on every rank, cuts it into batches of ``B``
exactly as a one-process run does, and gives rank ``r`` the ``r``-th of ``N`` equal
contiguous parts of each batch (``B / N`` samples). So step ``k`` of the ``N`` ranks
together sees exactly batch ``k`` of the one-process run, and every rank runs the same
number of steps.

Rules: ``B`` must be divisible by ``N``. A last, incomplete batch of ``b`` samples is
trimmed to a multiple of ``N`` (at most ``N - 1`` samples of an epoch are skipped; none
when ``N`` divides the dataset size).

The order: with ``seed=None`` (the default) it is the one a plain DataLoader draws,
``np.random.permutation(n)`` from NumPy's global generator, taken from rank 0 and sent
to every rank (so ``--seed`` and checkpointed RNG state keep working as in one process).
With an integer ``seed`` it is ``np.random.default_rng([seed, epoch]).permutation(n)``
and needs no communication; ``epoch`` advances on every new order (``set_epoch`` sets it,
e.g. when resuming).
"""

from __future__ import annotations

import numpy as np

from .faults import guarded
from .world import World, world


class DistributedSampler:
    def __init__(self, seed: int | None = None, *, evaluation: bool = False, rank: int | None = None,
                 world_size: int | None = None) -> None:
        """``evaluation=True``: each rank takes one contiguous ``1/N`` of the order, in
        batches of ``B`` (validation: no sample is dropped, ranks may run different
        numbers of batches). ``rank``/``world_size`` default to the MPI world's
        (giving them simulates a rank without MPI, e.g. in tests)."""
        w: World | None = None
        if rank is None or world_size is None:
            w = world()
        self.rank = w.rank if rank is None else int(rank)
        self.size = w.size if world_size is None else int(world_size)
        if not 0 <= self.rank < self.size:
            raise ValueError(f"DistributedSampler: rank must be in 0..{self.size - 1}, got {self.rank}")
        self._comm = w.comm if (w is not None and rank is None and world_size is None) else None
        self.seed = seed
        self.epoch = 0
        self.evaluation = evaluation

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose order the next ``order()`` draws (integer seeds only matter)."""
        self.epoch = int(epoch)

    # -- the protocol DataLoader calls --------------------------------------------------
    def order(self, n: int, shuffle: bool) -> np.ndarray:
        """This epoch's order of all ``n`` samples, the same on every rank."""
        if not shuffle:
            return np.arange(n)
        if self.seed is not None:
            order = np.random.default_rng([int(self.seed), self.epoch]).permutation(n)
            self.epoch += 1
            return order
        order = np.random.permutation(n)  # every rank draws, so NumPy's generators stay in step
        if self._comm is not None and self.size > 1:
            with guarded("DistributedSampler order"):
                self._comm.Bcast(order, root=0)
        return order

    def batches(self, order: np.ndarray, batch_size: int) -> list[np.ndarray]:
        """This rank's index batches of ``order`` for a global batch of ``batch_size``."""
        n, size = len(order), self.size
        if self.evaluation:
            mine = np.array_split(order, size)[self.rank]
            return np.array_split(mine, range(batch_size, len(mine), batch_size)) if len(mine) else []
        self._check(batch_size)
        out = []
        for start in range(0, n, batch_size):
            chunk = order[start:start + batch_size]
            part = len(chunk) // size  # == per except in a last incomplete batch
            if part:
                out.append(chunk[self.rank * part:(self.rank + 1) * part])
        return out

    def num_batches(self, n: int, batch_size: int) -> int:
        if self.evaluation:
            mine = len(np.array_split(np.arange(n), self.size)[self.rank])
            return -(-mine // batch_size)
        self._check(batch_size)
        return n // batch_size + (1 if n % batch_size >= self.size else 0)

    def _check(self, batch_size: int) -> None:
        if batch_size % self.size:
            lower, upper = batch_size - batch_size % self.size, batch_size + self.size - batch_size % self.size
            raise ValueError(
                f"DistributedSampler: the batch size {batch_size} is the global batch, split over {self.size} ranks, "
                f"so it must be divisible by {self.size}; use {lower or upper} or {upper}")
