"""``Optimizer``: the base class (parameter list, ``reset_grad``, state dicts, clipping).

Subclasses keep per-parameter state in dicts named in ``_slots`` (``self.u[p]`` is an
NDArray shaped like ``p``) and scalar state in ``_scalars``; ``state_dict`` saves both
keyed by parameter name, so checkpoints do not depend on parameter order.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
from needle_core.autograd import Tensor

from .._arrays import cast


class Optimizer:
    _slots: tuple[str, ...] = ()
    _scalars: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Tensor]) -> None:
        self.params = list(params)
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"{type(self).__name__} expects an iterable of Parameters (e.g. model.parameters()), "
                    f"but item {i} is {type(p).__name__}"
                )

    def step(self) -> None:
        raise NotImplementedError

    def reset_grad(self) -> None:
        for p in self.params:
            p.grad = None

    zero_grad = reset_grad  # PyTorch's name, for users coming from there

    def clip_grad_norm(self, max_norm: float = 0.25) -> float:
        """Scale all gradients so their global L2 norm is at most ``max_norm``."""
        return clip_grad_norm(self.params, max_norm)

    # -- state of one parameter ----------------------------------------------------
    def _updates(self, fused_kernel: str) -> Iterator[tuple[Tensor, Any, Any, Any]]:
        """``(p, w, g, fused)`` for each parameter with a gradient: ``w``, ``g`` compact
        NDArrays; ``fused`` the device's ``fused_kernel`` (then ``w`` is held by ``p``
        alone, to update in place) or None (build the new weight with NDArray ops)."""
        for p in self.params:
            if p.grad is None:
                continue
            fused = getattr(p.device, fused_kernel)
            if fused is not None:  # in place on a buffer only p holds (copy-on-write)
                self._private_weight(p)
            w, g = self._weight_and_grad(p)
            yield p, w, g, fused

    @staticmethod
    def _weight_and_grad(p: Tensor) -> tuple[Any, Any]:
        """The parameter's NDArray (compact) and its gradient in the same dtype."""
        w = p.realize_cached_data()
        if not w.is_compact():
            w = w.compact()
            p.cached_data = w
        g = p.grad.realize_cached_data()
        g = cast(g if g.is_compact() else g.compact(), str(w.dtype))
        return w, g

    @staticmethod
    def _private_weight(p: Tensor) -> Any:
        """The parameter's NDArray, compact and held by nothing but ``p``, for a fused
        kernel to update in place.

        ``step()`` gives ``p.data`` a new value: a tensor taken before it (``d =
        p.detach()``, ``p.data``, a view in a graph still alive) keeps the old values,
        as with the NDArray fallback, which builds a new array. So a buffer anything
        else holds is copied first (copy-on-write); an unshared one, the common case
        in a training loop, is updated in place at no extra cost.
        """
        w = p.realize_cached_data()
        if not w.is_compact():
            p.cached_data = w.compact()  # a fresh buffer: nobody else holds it
        else:
            del w  # our own reference must not count as sharing
            data_refs, buffer_refs = _reference_counts(p)
            if data_refs > _UNSHARED[0] or buffer_refs > _UNSHARED[1]:
                p.cached_data = p.cached_data._copy()
        return p.cached_data

    @staticmethod
    def _zeros_like(w: Any) -> Any:
        return w.device.full(w.shape, 0.0, dtype=str(w.dtype))

    # -- checkpoints -----------------------------------------------------------
    def _param_names(self, module: Any | None) -> list[str]:
        if module is None:
            return [str(i) for i in range(len(self.params))]
        by_id = {id(p): name for name, p in module.named_parameters()}
        missing = [i for i, p in enumerate(self.params) if id(p) not in by_id]
        if missing:
            raise ValueError(f"optimizer parameters {missing} are not parameters of the given {type(module).__name__}")
        return [by_id[id(p)] for p in self.params]

    def state_dict(self, module: Any | None = None) -> dict[str, np.ndarray]:
        """Optimizer state as NumPy arrays: ``"<slot>.<param name>"`` and scalars.

        Names are attribute paths in ``module`` when given, else parameter indices.
        """
        names = self._param_names(module)
        state: dict[str, np.ndarray] = {s: np.asarray(getattr(self, s)) for s in self._scalars}
        for slot in self._slots:
            table = getattr(self, slot)
            for name, p in zip(names, self.params, strict=True):
                if p in table:
                    state[f"{slot}.{name}"] = table[p].numpy()
        return state

    def load_state_dict(self, state: Mapping[str, Any], module: Any | None = None) -> None:
        names = self._param_names(module)
        index = dict(zip(names, self.params, strict=True))
        known = set(self._scalars) | {f"{s}.{n}" for s in self._slots for n in names}
        unexpected = sorted(k for k in state if k not in known)
        if unexpected:
            raise KeyError(
                f"{type(self).__name__}.load_state_dict: unexpected keys {unexpected}; expected scalars "
                f"{list(self._scalars)} and per-parameter slots {list(self._slots)} for {len(names)} parameters"
            )
        for s in self._scalars:
            if s in state:
                setattr(self, s, type(getattr(self, s))(np.asarray(state[s])))
        from needle_core.backend_ndarray import array

        for key, value in state.items():
            slot, _, name = key.partition(".")
            if not name:
                continue
            p = index[name]
            value = np.asarray(value)
            if tuple(value.shape) != tuple(p.shape):
                raise ValueError(f"{key}: checkpoint has shape {value.shape}, parameter has {tuple(p.shape)}")
            getattr(self, slot)[p] = array(value.astype(p.dtype), dtype=str(p.dtype), device=p.device)


def _reference_counts(holder: Any) -> tuple[int, int]:
    """References to ``holder.cached_data`` and to its buffer (CPython counts)."""
    data = holder.cached_data
    return sys.getrefcount(data), sys.getrefcount(data._handle)


class _Holder:
    __slots__ = ("cached_data", "_handle")


def _unshared_counts() -> tuple[int, int]:
    """The counts of an array held only by its tensor, measured once by the same code
    (so they hold on any CPython version)."""
    holder, data = _Holder(), _Holder()
    data._handle = object()
    holder.cached_data = data
    del data
    return _reference_counts(holder)


_UNSHARED = _unshared_counts()


def clip_grad_norm(params: Iterable[Tensor], max_norm: float = 0.25) -> float:
    """Rescale gradients (new Tensors, old ones untouched) to global norm ``<= max_norm``.

    The coefficient is ``min(1, max_norm / (norm + 1e-6))``. Returns the norm before clipping.
    """
    params = [p for p in params if p.grad is not None]
    total = float(np.sqrt(sum(float((p.grad.realize_cached_data() ** 2).sum().numpy()) for p in params)))
    coef = min(1.0, float(max_norm) / (total + 1e-6))
    if coef < 1.0:
        for p in params:
            p.grad = Tensor(p.grad.realize_cached_data() * coef, device=p.grad.device, requires_grad=False)
    return total


# One class identity across importlib.reload / IPython %autoreload (see needle_core._reload).
from needle_core._reload import keep_classes  # noqa: E402

keep_classes(globals())
