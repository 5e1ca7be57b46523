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
# needle.<name> -> (the module it stands for, what to install when that is missing)
_CORE_MODULES = ("autograd", "ops", "init", "backend_ndarray", "backend_selection", "kernels", "hookspecs")
_NN_MODULES = ("nn", "optim", "data", "apps")
_alias.install(
    {name: (f"needle_core.{name}", None) for name in _CORE_MODULES}
    | {"backends": ("needle_core.registry", None)}
    | {name: (f"needle_nn.{name}", _NN_HINT) for name in _NN_MODULES}
    | {"distributed": ("needle_distributed", _DIST_HINT)}
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

_LAZY_NN = {*_NN_MODULES, "distributed"}
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
