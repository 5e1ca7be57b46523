"""``Module`` and ``Parameter``: parameter discovery, train/eval, and state dicts.

Parameters and buffers are found by walking a module's attributes (and the lists,
tuples and dicts inside them), in attribute order, as the course does. The same walk
names them by attribute path (``modules.2.fn.modules.0.weight``) for checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from needle_core.autograd import Tensor

from .._arrays import to_numpy


class Parameter(Tensor):
    """A Tensor that is a trainable parameter of a Module."""


def _walk(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(path, obj)`` for every Module and Tensor reachable from ``value``."""
    if isinstance(value, Tensor):
        yield prefix, value
    elif isinstance(value, Module):
        yield prefix, value
        for name, attr in value.__dict__.items():
            yield from _walk(attr, f"{prefix}.{name}" if prefix else name)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _walk(item, f"{prefix}.{i}" if prefix else str(i))


class Module:
    """Base class of every layer: ``__call__`` runs ``forward``."""

    def __init__(self) -> None:
        self.training = True

    # -- discovery -------------------------------------------------------------
    def named_tensors(self) -> list[tuple[str, Tensor]]:
        """Every Parameter and buffer (plain Tensor attribute), by attribute path.

        A tensor reachable twice (tied weights) is listed once, so it is updated once.
        """
        seen: set[int] = set()
        out = []
        for path, obj in _walk(self):
            if isinstance(obj, Tensor) and id(obj) not in seen:
                seen.add(id(obj))
                out.append((path, obj))
        return out

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        return [(n, t) for n, t in self.named_tensors() if isinstance(t, Parameter)]

    def parameters(self) -> list[Parameter]:
        """The Parameters of this module and every submodule, in attribute order."""
        return [t for _, t in self.named_tensors() if isinstance(t, Parameter)]

    def _modules(self) -> list[Module]:
        return [obj for _, obj in _walk(self) if isinstance(obj, Module)]

    def _children(self) -> list[Module]:
        return self._modules()[1:]

    def train(self) -> Module:
        for m in self._modules():
            m.training = True
        return self

    def eval(self) -> Module:
        for m in self._modules():
            m.training = False
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    # -- checkpoints -----------------------------------------------------------
    def state_dict(self) -> dict[str, Tensor]:
        """Parameters and buffers (e.g. BatchNorm running statistics), detached."""
        return {name: t.detach() for name, t in self.named_tensors()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> list[str]:
        """Copy ``state`` into this module's tensors in place (optimisers keep working).

        ``strict`` rejects missing and unexpected keys; shapes must always match.
        Returns the keys that were missing (only non-empty when ``strict=False``).
        """
        own = dict(self.named_tensors())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        problems = []
        if strict and missing:
            problems.append(f"missing keys: {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {unexpected}")
        arrays = {k: to_numpy(v) for k, v in state.items() if k in own}
        for key, arr in arrays.items():
            if tuple(arr.shape) != tuple(own[key].shape):
                problems.append(f"{key}: checkpoint has shape {tuple(arr.shape)}, model has {tuple(own[key].shape)}")
        if problems:
            raise KeyError(
                f"load_state_dict for {type(self).__name__} failed: " + "; ".join(problems)
                + ". Build the model with the same architecture as the checkpoint (or pass strict=False)."
            )
        for key, arr in arrays.items():
            t = own[key]
            t.data = Tensor(arr.astype(t.dtype), device=t.device, dtype=t.dtype, requires_grad=False)
        return missing

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def check_module(value: Any, where: str) -> Module:
    """Reject a Module *class* where an instance is needed, with a clear message."""
    if isinstance(value, type) and issubclass(value, Module):
        raise TypeError(
            f"{where} expects Module instances, but got the class {value.__name__}; "
            f"write {value.__name__}() (with its arguments) instead of {value.__name__}."
        )
    if not callable(value):
        raise TypeError(f"{where} expects Module instances, but got {type(value).__name__}: {value!r}")
    return value


# One class identity across importlib.reload / IPython %autoreload (see needle_core._reload).
from needle_core._reload import keep_classes  # noqa: E402

keep_classes(globals())
