"""Collectives on needle arrays and models: ``broadcast_parameters`` (after checking that
every rank built the same model) and ``all_reduce``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from needle_core.autograd import Tensor
from needle_core.backend_ndarray import NDArray
from needle_nn.nn.module import Module

from . import buckets, host
from .faults import guarded
from .world import world


def _mpi() -> Any:
    from mpi4py import MPI

    return MPI


def _specs(tensors: Sequence[Tensor]) -> list[tuple[tuple[int, ...], str]]:
    return [(tuple(t.shape), str(t.dtype)) for t in tensors]


def _first_difference(mine: list[tuple[str, tuple, str]], root: list[tuple[str, tuple, str]], rank: int,
                      root_rank: int) -> str | None:
    for i, ((name, shape, dtype), (r_name, r_shape, r_dtype)) in enumerate(zip(mine, root, strict=False)):
        if name != r_name:
            return f"parameter #{i} differs in name: {name!r} on rank {rank}, {r_name!r} on rank {root_rank}"
        if shape != r_shape or dtype != r_dtype:
            return (f"parameter {name!r} is {shape} {dtype} on rank {rank} but {r_shape} {r_dtype} on rank "
                    f"{root_rank}")
    if len(mine) != len(root):
        longer, who = (mine, rank) if len(mine) > len(root) else (root, root_rank)
        return (f"rank {rank} has {len(mine)} parameters and buffers, rank {root_rank} has {len(root)}; the first "
                f"one only rank {who} has is {longer[min(len(mine), len(root))][0]!r}")
    return None


def broadcast_parameters(module: Module, root: int = 0) -> None:
    """Make every rank's parameters and buffers bit-identical copies of rank ``root``'s.

    Every rank must call it with a model of the same architecture; if they differ, every
    rank raises ``ValueError`` naming the first differing parameter. No-op in a world of one.
    """
    w = world()
    if w.size == 1:
        return
    if not 0 <= root < w.size:
        raise ValueError(f"broadcast_parameters: root must be a rank in 0..{w.size - 1}, got {root}")
    named = module.named_tensors()
    mine = [(name, tuple(t.shape), str(t.dtype)) for name, t in named]
    with guarded("broadcast_parameters (model check)"):
        root_specs = w.comm.bcast(mine, root=root)
        problem = _first_difference(mine, root_specs, w.rank, root)
        problems = w.comm.allgather(problem)
    bad = [(r, p) for r, p in enumerate(problems) if p]
    if bad:
        listed = "; ".join(p for _, p in bad[:3])
        raise ValueError(f"broadcast_parameters: the ranks built different models ({len(bad)} rank(s) differ from "
                         f"rank {root}): {listed}. Build the same model on every rank.")
    tensors = [t for _, t in named]
    for bucket in buckets.plan(_specs(tensors)):
        if w.rank == root:
            for slot in bucket.slots:
                host.pack(tensors[slot[0]].realize_cached_data(), bucket.slice(slot))
        with guarded("broadcast_parameters"):
            w.comm.Bcast(bucket.buffer, root=root)
        if w.rank != root:
            for slot in bucket.slots:
                t = tensors[slot[0]]
                t.cached_data = host.unpack(bucket.slice(slot), tuple(t.shape), str(t.dtype), t.device)


def all_reduce(array: NDArray | np.ndarray, op: str = "sum") -> None:
    """Sum (``op="sum"``) or average (``"mean"``) a compact array over ranks, in place.

    A host-memory NDArray or a NumPy array is reduced where it lies; other devices'
    arrays are staged through host memory.
    """
    if op not in ("sum", "mean"):
        raise ValueError(f"all_reduce: op must be 'sum' or 'mean', got {op!r}")
    w = world()
    if w.size == 1:
        return
    MPI = _mpi()
    if isinstance(array, np.ndarray):
        target, staged = array, False
    else:
        if not array.is_compact():
            raise ValueError("all_reduce needs a compact NDArray (call .compact() first): it reduces in place")
        view = host.host_view(array)
        target, staged = (view, False) if view is not None else (array.numpy(), True)
    with guarded("all_reduce"):
        w.comm.Allreduce(MPI.IN_PLACE, target, op=MPI.SUM)
    if op == "mean":
        np.multiply(target, 1.0 / w.size, out=target, casting="same_kind")
    if staged:
        array.device.from_numpy(np.ascontiguousarray(target), array._handle)
