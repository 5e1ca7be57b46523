"""Timed under ``mpirun`` (or alone) by ``rows_distributed.py``; prints one JSON line on rank 0.

``train``: MLPResNet(784, 100, 3) Adam steps of a global batch of 100 split over the
ranks (gradients averaged by DistributedDataParallel). ``allreduce``: a 10 MB float32
buffer summed over the ranks by raw mpi4py, by ``all_reduce`` on a cpu NDArray, and as
the gradient of one 10 MB parameter averaged by ``average_gradients``.
Each sample is a number of calls between barriers; seconds per call.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import needle as ndl
import needle.distributed as dist
import numpy as np

REPEAT, GLOBAL_BATCH, BUCKET_BYTES = 7, 100, 10_000_000


def timed(fns: dict, number: int, comm) -> dict[str, list[float]]:
    """Samples of every callable, interleaved (A, B, C, A, B, C, ...) so load drift hits them alike."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(REPEAT):
        for name, fn in fns.items():
            if comm is not None:
                comm.Barrier()
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            if comm is not None:
                comm.Barrier()
            samples[name].append((time.perf_counter() - t0) / number)
    return samples


def train(w) -> dict[str, list[float]]:
    from needle.apps.mlp_resnet import MLPResNet

    dev = ndl.cpu()
    np.random.seed(0)
    model = dist.DistributedDataParallel(MLPResNet(784, 100, num_blocks=3, device=dev))
    opt = model.wrap(ndl.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-3))
    rng = np.random.default_rng(w.rank)
    per_rank = GLOBAL_BATCH // w.size
    X = ndl.Tensor(rng.random((per_rank, 784), dtype=np.float32), device=dev, requires_grad=False)
    y = ndl.Tensor(rng.integers(0, 10, per_rank).astype(np.float32), device=dev, requires_grad=False)
    loss_fn = ndl.nn.SoftmaxLoss()

    def step() -> None:
        opt.reset_grad()
        loss = loss_fn(model(X), y)
        loss.backward()
        opt.step()
        loss.numpy()

    return timed({"train": step}, 20, w.comm)


def allreduce(w) -> dict[str, list[float]]:
    from mpi4py import MPI

    n = BUCKET_BYTES // 4
    raw = np.ones(n, np.float32)
    arr = ndl.backend_ndarray.array(np.ones(n, np.float32), device=ndl.cpu())
    param = ndl.nn.Parameter(ndl.backend_ndarray.array(np.zeros(n, np.float32), device=ndl.cpu()))

    class OneTensor(ndl.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = param

    model = dist.DistributedDataParallel(OneTensor())
    grad = ndl.Tensor(np.ones(n, np.float32), device=ndl.cpu(), requires_grad=False)

    def ddp() -> None:
        param.grad = grad
        model.average_gradients()

    return timed({"raw": lambda: w.comm.Allreduce(MPI.IN_PLACE, raw, op=MPI.SUM),
                  "all_reduce": lambda: dist.all_reduce(arr), "ddp": ddp}, 10, w.comm)


if __name__ == "__main__":
    world = dist.init(warn=False)
    result = {"train": train, "allreduce": allreduce}[sys.argv[1]](world)
    if world.rank == 0:
        print(json.dumps({k: {"median": statistics.median(v), "samples": v} for k, v in result.items()}))
