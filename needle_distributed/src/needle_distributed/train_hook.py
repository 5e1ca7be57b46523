"""``mpirun -n N needle train ...``: the ``needle.train_hooks`` entry point of needle-distributed.

Under an MPI launcher with more than one rank, ``needle train`` trains data-parallel:
``--batch-size`` is the global batch (each rank takes ``B / N`` of every batch of the
one-process run, or ``B / N`` of the token streams for ``lstm_lm``), gradients and
BatchNorm statistics are averaged every step, validation is split over the ranks, and
every printed figure (loss, accuracy, samples/s) covers all ranks. Only
rank 0 prints, plots and writes checkpoints; a checkpoint is the same as a one-process
run's, so ``--resume`` works with any number of ranks.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from needle_nn.apps._loop import run_epoch
from needle_nn.cli.tasks import BPTTBatches, StatefulLM
from needle_nn.data import DataLoader

from . import faults
from .collectives import all_reduce
from .ddp import DistributedDataParallel
from .sampler import DistributedSampler
from .world import World, init, launched_by_mpi

LOCAL_RANK_FIELD = "{local_rank}"


def attach(args: argparse.Namespace) -> DistributedTraining | None:
    """The hook for this run, or None outside an MPI launch of more than one rank."""
    if not launched_by_mpi():
        return None
    w = init(warn=False)
    return DistributedTraining(args, w) if w.size > 1 else None


class DistributedTraining:
    def __init__(self, args: argparse.Namespace, world: World) -> None:
        self.world = world
        n = world.size
        # one device per rank: --device 'cuda:{local_rank}' or NEEDLE_DEVICE='cuda:{local_rank}'
        if args.device and LOCAL_RANK_FIELD in args.device:
            args.device = args.device.replace(LOCAL_RANK_FIELD, str(world.local_rank))
        if LOCAL_RANK_FIELD in os.environ.get("NEEDLE_DEVICE", ""):
            os.environ["NEEDLE_DEVICE"] = os.environ["NEEDLE_DEVICE"].replace(LOCAL_RANK_FIELD, str(world.local_rank))
        if args.batch_size % n:
            b = args.batch_size
            raise SystemExit(f"--batch-size {b} is the global batch, split over {n} ranks: it must be divisible by "
                             f"{n} (e.g. {b - b % n or n} or {b + n - b % n})")
        self.per_rank = args.batch_size // n
        self.global_batch = args.batch_size
        self.save_hidden_at = args.max_steps if args.save is not None else None
        if world.rank != 0:  # rank 0 speaks and writes for everyone
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
            args.progress, args.save, args.plot = False, None, None
        self.model: Any = None
        self.steps = 0

    # -- hook interface (needle_nn.cli.hooks) ----------------------------------------------
    def failed(self, exc: BaseException) -> None:
        """This rank cannot go on (even a usage error such as an unusable per-rank device):
        name it and end every rank, which would otherwise wait for it in a collective."""
        if isinstance(exc, SystemExit) and not exc.code:
            return
        faults.abort(f"failed with {type(exc).__name__}: {exc}; aborting all {self.world.size} ranks")

    def prepare(self, task: Any, optimizer: Any) -> tuple[Any, Any]:
        self.model = task.model
        ddp = DistributedDataParallel(task.model)  # rank 0's initial parameters everywhere
        task.train = self._shard(task.train, evaluation=False)
        task.val = self._shard(task.val, evaluation=True)
        if isinstance(task.model, StatefulLM):
            self._split_resumed_hidden(task.model)
        w = self.world
        print(f"  distributed: {w.size} ranks over MPI ({w.library}); global batch {self.global_batch} = "
              f"{w.size} x {self.per_rank} per rank; loss, accuracy and samples/s cover all ranks")
        return task, ddp.wrap(optimizer)

    def batch_callback(self, on_batch: Callable[[int, float, int], None]) -> Callable[[int, float, int], None]:
        def global_batch(size: int, loss: float, correct: int) -> None:
            totals = np.array([size, loss * size, correct], dtype=np.float64)
            all_reduce(totals)
            self.steps += 1
            if self.steps == self.save_hidden_at and isinstance(self.model, StatefulLM):
                self._gather_hidden(self.model)  # the run stops after this step and saves it
            on_batch(int(totals[0]), float(totals[1] / totals[0]), int(totals[2]))

        return global_batch

    def evaluate(self, batches: Any, model: Any, loss_fn: Any, optimizer: Any = None) -> tuple[float, float]:
        sums = np.zeros(3)

        def add(size: int, loss: float, correct: int) -> None:
            sums[:] += (loss * size, correct, size)

        run_epoch(batches, model, loss_fn, optimizer, add)
        all_reduce(sums)
        if sums[2] == 0:
            return float("nan"), float("nan")
        return float(sums[1] / sums[2]), float(sums[0] / sums[2])

    # -- data ----------------------------------------------------------------------------
    def _columns(self, width: int) -> slice:
        per = width // self.world.size
        return slice(self.world.rank * per, (self.world.rank + 1) * per)

    def _shard(self, loader: Any, evaluation: bool) -> Any:
        if isinstance(loader, DataLoader):
            loader.sampler = DistributedSampler(evaluation=evaluation)
            return loader
        if isinstance(loader, BPTTBatches):  # token streams are columns: each rank takes B / N of them
            return BPTTBatches(loader.data[:, self._columns(loader.data.shape[1])], loader.seq_len, loader.device)
        raise TypeError(f"needle.distributed cannot split a {type(loader).__name__} over ranks")

    # -- the LSTM's carried hidden state: global in checkpoints, per rank in memory -------
    def _split_resumed_hidden(self, model: StatefulLM) -> None:
        load_local = model.load_hidden_arrays

        def load_global(arrays: dict[str, np.ndarray], device: Any) -> None:
            cols = self._columns(self.global_batch)
            load_local({k: np.asarray(v)[:, cols] for k, v in arrays.items()}, device)

        model.load_hidden_arrays = load_global

    def _gather_hidden(self, model: StatefulLM) -> None:
        parts = self.world.comm.gather(model.hidden_arrays(), root=0)
        if self.world.rank == 0 and parts[0]:
            joined = {k: np.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}
            model.hidden_arrays = lambda: joined
