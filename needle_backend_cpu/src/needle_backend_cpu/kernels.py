"""The kernel namespace of device ``cpu``: the compiled extension module
(``_kernels`` or an ISA variant, chosen by ``runtime.py``) with its thread count set."""

from __future__ import annotations

from types import ModuleType

from . import runtime


def factory(index: int) -> ModuleType:
    """The namespace the registry loads for ``cpu:<index>`` (only index 0 exists)."""
    if index != 0:
        raise ValueError(f"device cpu has a single index 0, got cpu:{index}; use ndl.cpu()")
    choice = runtime.choose_module()
    if not choice.module:
        raise RuntimeError(f"device cpu: {choice.reason}; {choice.hint}")
    kernels = runtime.load_kernels()
    kernels.set_num_threads(runtime.threads_from_env())
    return kernels
