"""``DistributedDataParallel``: gradients averaged over ranks in a few large allreduces.

Its ``average_gradients()`` replaces every parameter's gradient with the average over
ranks (and averages buffers such as BatchNorm's running statistics). ``wrap(optimizer)``
returns an optimizer whose ``step()`` and ``clip_grad_norm()`` average first, so a
training loop changes in one line.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from needle_core.autograd import Tensor
from needle_nn.nn.module import Module, Parameter

from . import buckets, host
from .collectives import _mpi, _specs, broadcast_parameters
from .faults import guarded
from .world import World, world


class DistributedDataParallel(Module):
    """Wraps ``module`` for data-parallel training; parameter names stay those of ``module``.

    At construction (``broadcast=True``) rank 0's parameters are copied to every rank.
    After ``backward()`` call ``average_gradients()`` (or train through ``wrap(opt)``):
    each parameter's gradient becomes the average over ranks, weighted by each rank's
    ``weight`` (its batch size when batches differ). Floating-point buffers (BatchNorm's
    running statistics) are averaged the same way, so every rank keeps the same ones.

    Gradients of at least ``inplace_mb`` MiB that are compact and in host memory are
    reduced in place, in their own buffer, one message each (no copy at all; the values
    of that gradient array change). The others travel packed in buckets of at most
    ``bucket_mb`` MiB, one message per bucket.
    """

    def __init__(self, module: Module, *, bucket_mb: float = 25.0, inplace_mb: float = 1.0, broadcast: bool = True,
                 sync_buffers: bool = True) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel wraps a needle.nn.Module, got {type(module).__name__}")
        self.module = module
        self._world: World = world()
        if broadcast:
            broadcast_parameters(module)
        named = module.named_tensors()
        params = [t for _, t in named if isinstance(t, Parameter)]
        threshold = inplace_mb * 2**20
        big = [_nbytes(p) >= threshold for p in params]
        self._large = [p for p, b in zip(params, big, strict=True) if b]
        self._params = [p for p, b in zip(params, big, strict=True) if not b]
        self._buffer_names = [n for n, t in named if not isinstance(t, Parameter)] if sync_buffers else []
        self._buckets = buckets.plan(_specs(self._current_tensors()), cap_bytes=int(bucket_mb * 2**20), flags=True)
        if self._buckets and self._large:  # room for the large gradients' presence flags in the first bucket
            first = self._buckets[0]
            first.buffer = np.zeros(first.buffer.size + len(self._large), first.dtype)
        self._header = np.zeros(len(self._large) + 1)  # the same flags and the weight, when there is no bucket
        self._staging: dict[int, np.ndarray] = {}  # host copies of large gradients that cannot be reduced in place

    # parameter discovery and checkpoints see the wrapped module's names (no "module." prefix)
    def named_tensors(self) -> list[tuple[str, Tensor]]:
        return self.module.named_tensors()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    @property
    def num_buckets(self) -> int:
        """Allreduce messages per step."""
        return len(self._buckets) + len(self._large) + (1 if self._large and not self._buckets else 0)

    def _current_tensors(self) -> list[Tensor]:
        if not self._buffer_names:
            return self._params
        by_name = dict(self.module.named_tensors())  # buffers may be new objects every step
        return [*self._params, *(by_name[n] for n in self._buffer_names)]

    def average_gradients(self, weight: float = 1.0) -> None:
        """Average gradients (and buffers) over ranks; ``weight`` is this rank's share
        (e.g. its batch size). A parameter without a gradient on some rank counts as a
        zero gradient there; one without a gradient on every rank keeps ``grad=None``."""
        if self._world.size == 1:
            return
        large = [p.grad.realize_cached_data() if p.grad is not None else None for p in self._large]
        present = [g is not None for g in large]
        counts, total = self._reduce_buckets(weight, present)
        if self._large:
            self._reduce_large(large, counts, weight, total)

    def _allreduce(self, buf: np.ndarray) -> None:
        MPI = _mpi()
        with guarded("average_gradients"):
            self._world.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)

    @staticmethod
    def _check_weight(total: float) -> float:
        if total <= 0:
            raise ValueError(f"average_gradients: the ranks' weights sum to {total}; each rank's weight (its batch "
                             "size) must be positive")
        return total

    def _reduce_buckets(self, weight: float, large_present: list[bool]) -> tuple[np.ndarray, float]:
        """Reduce the buckets; the large gradients' presence flags ride in the first one
        (or in a message of their own when there is no bucket). Returns how many ranks
        hold each large gradient, and the ranks' total weight."""
        n_large = len(large_present)
        if not self._buckets:
            header = self._header
            header[:-1], header[-1] = large_present, weight
            self._allreduce(header)
            return header[:-1], self._check_weight(float(header[-1]))
        tensors = self._current_tensors()
        n_params = len(self._params)
        counts, total = np.zeros(0), 0.0
        for i, bucket in enumerate(self._buckets):
            buf, n_slots = bucket.buffer, len(bucket.slots)
            flags = buf[bucket.total:bucket.total + n_slots]
            for j, slot in enumerate(bucket.slots):
                t = tensors[slot[0]]
                value = t.grad if slot[0] < n_params else t
                if value is None:
                    bucket.slice(slot)[...] = 0
                    flags[j] = 0
                else:
                    host.pack(value.realize_cached_data(), bucket.slice(slot), weight)
                    flags[j] = 1
            if i == 0 and n_large:
                buf[bucket.total + n_slots:-1] = large_present
            buf[-1] = weight
            self._allreduce(buf)
            total = self._check_weight(float(buf[-1]))
            if i == 0:
                counts = buf[bucket.total + n_slots:-1].copy()
            for j, slot in enumerate(bucket.slots):
                if flags[j] == 0:
                    continue
                t = tensors[slot[0]]
                arr = host.unpack(bucket.slice(slot), tuple(t.shape), str(t.dtype), t.device, 1.0 / total)
                if slot[0] < n_params:
                    t.grad = Tensor.make_const(arr)
                else:
                    t.cached_data = arr
        return counts, total

    def _reduce_large(self, grads: list[Any], counts: np.ndarray, weight: float, total: float) -> None:
        scale = 1.0 / total
        reduced_in_place: set[int] = set()
        for k, (p, g) in enumerate(zip(self._large, grads, strict=True)):
            if counts[k] == 0:  # no rank has a gradient for it
                continue
            view = None
            if (g is not None and g.is_compact() and str(g.dtype) == str(p.dtype)
                    and id(g._handle) not in reduced_in_place):
                view = host.host_view(g)
            if view is not None:  # the gradient's own memory: no copy
                reduced_in_place.add(id(g._handle))
                flat = view.reshape(-1)
                if weight != 1.0:
                    np.multiply(flat, weight, out=flat, casting="same_kind")
                self._allreduce(flat)
                np.multiply(flat, scale, out=flat, casting="same_kind")
                continue
            staging = self._staging.get(k)
            if staging is None:
                staging = self._staging[k] = np.empty(int(np.prod(p.shape)), np.dtype(str(p.dtype)))
            if g is None:
                staging[...] = 0
            else:
                host.pack(g, staging, weight)
            self._allreduce(staging)
            p.grad = Tensor.make_const(host.unpack(staging, tuple(p.shape), str(p.dtype), p.device, scale))

    def wrap(self, optimizer: Any) -> DistributedOptimizer:
        """``optimizer`` whose ``step()`` averages gradients over ranks first."""
        return DistributedOptimizer(optimizer, self)


def _nbytes(t: Tensor) -> int:
    return int(np.prod(t.shape)) * np.dtype(str(t.dtype)).itemsize


class DistributedOptimizer:
    """An optimizer proxy: gradients are averaged (once per step) before ``step()`` or
    ``clip_grad_norm()`` use them. Everything else is the wrapped optimizer's."""

    def __init__(self, optimizer: Any, ddp: DistributedDataParallel) -> None:
        self.optimizer = optimizer
        self.ddp = ddp
        self.weight = 1.0  # this rank's share of the next step (its batch size when batches differ)
        self._averaged = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.optimizer, name)

    def _average(self) -> None:
        if not self._averaged:
            self.ddp.average_gradients(self.weight)
            self._averaged = True

    def reset_grad(self) -> None:
        self.optimizer.reset_grad()
        self._averaged = False

    zero_grad = reset_grad

    def clip_grad_norm(self, max_norm: float = 0.25) -> float:
        self._average()
        return self.optimizer.clip_grad_norm(max_norm)

    def step(self) -> None:
        self._average()
        self.optimizer.step()
        self._averaged = False
