"""needle: the user-facing namespace (``import needle as ndl``).

A thin facade over ``needle_core`` (autograd, ops, NDArray, init, devices) and,
lazily, ``needle_nn`` (``needle.nn``, ``needle.optim``, ``needle.data``,
``needle.apps``, ``ndl.save``/``ndl.load``) and ``needle_distributed``
(``needle.distributed``). Importing needle loads no backend
plugin: the first device lookup does.
"""

from __future__ import annotations

from . import _alias

_NN_HINT = "the needle-nn package: pip install needle-nn (from this repository: pip install ./needle_nn)"
_DIST_HINT = ("the needle-distributed package: pip install 'needle-distributed[mpi]' "
              "(from this repository: pip install './needle_distributed[mpi]')")
_alias.install(
    {
        "autograd": ("needle_core.autograd", None),
        "ops": ("needle_core.ops", None),
        "init": ("needle_core.init", None),
        "backend_ndarray": ("needle_core.backend_ndarray", None),
        "backend_selection": ("needle_core.backend_selection", None),
        "kernels": ("needle_core.kernels", None),
        "hookspecs": ("needle_core.hookspecs", None),
        "backends": ("needle_core.registry", None),
        "nn": ("needle_nn.nn", _NN_HINT),
        "optim": ("needle_nn.optim", _NN_HINT),
        "data": ("needle_nn.data", _NN_HINT),
        "apps": ("needle_nn.apps", _NN_HINT),
        "distributed": ("needle_distributed", _DIST_HINT),
    }
)

from needle_core import autograd, backend_ndarray, init, ops  # noqa: E402
from needle_core import registry as backends  # noqa: E402
from needle_core.autograd import (  # noqa: E402
    Op,
    Tensor,
    TensorOp,
    TensorTuple,
    TensorTupleOp,
    Value,
)
from needle_core.hookspecs import DeviceSpec, KernelContribution, ProbeResult, hookimpl  # noqa: E402
from needle_core.init import ones, ones_like, zeros, zeros_like  # noqa: E402
from needle_core.ops import *  # noqa: E402,F403
from needle_core.tools import DivergenceError, check_against, profile  # noqa: E402
from needle_core.backend_ndarray.dlpack import tensor_from_dlpack as from_dlpack  # noqa: E402
from needle_core.registry import all_devices, cpu, cpu_numpy, cuda, default_device, device, devices  # noqa: E402

_LAZY_NN = {"nn", "optim", "data", "apps", "distributed"}
_LAZY_NN_ATTRS = {"save": "needle_nn.checkpoint", "load": "needle_nn.checkpoint"}


def __getattr__(name: str):
    import importlib

    if name in _LAZY_NN:
        return importlib.import_module(f"needle.{name}")
    if name in _LAZY_NN_ATTRS:
        try:
            module = importlib.import_module(_LAZY_NN_ATTRS[name])
        except ModuleNotFoundError as exc:
            raise ImportError(f"ndl.{name} needs {_NN_HINT}") from exc
        return getattr(module, name)
    raise AttributeError(f"module 'needle' has no attribute {name!r}")
