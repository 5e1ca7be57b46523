"""Can the ``cuda`` device run here, and if not, exactly why.

Four things are needed: the NVIDIA driver (``libcuda.so.1``), at least one GPU,
``nvcc`` (pycuda's SourceModule compiles kernels at run time) and pycuda itself.
The probe asks the driver through ctypes (``cuInit`` + ``cuDeviceGetCount``: no
context, no kernel build), looks for nvcc on disk and for pycuda with
``importlib.util.find_spec``; pycuda is imported only when everything else is
there, to report a broken build precisely. This module never imports pycuda at
import time.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from needle_core.hookspecs import ProbeResult
from needle_core.registry.hints import install_command

# From a source checkout the path form (pip install './needle_backend_cuda[pycuda]'), else the package name.
PYCUDA_HINT = (
    f"Install pycuda with: {install_command('needle-backend-cuda', 'pycuda')} (it builds pycuda >= 2025.1.2 "
    "from source against your CUDA toolkit; see needle_backend_cuda/GPU_CHECKLIST.md)"
)
DRIVER_HINT = "Install the NVIDIA driver (it provides libcuda.so.1)"
NVCC_HINT = "Install the CUDA toolkit and put nvcc on PATH (or set CUDA_HOME)"
GPU_HINT = "Run on a machine with an NVIDIA GPU (check nvidia-smi and CUDA_VISIBLE_DEVICES)"

_DRIVER_LIBS = ("libcuda.so.1", "libcuda.so", "nvcuda.dll", "libcuda.dylib")


@dataclass(frozen=True)
class DriverStatus:
    """What the CUDA driver said: ``error`` is None when it initialised."""

    error: str | None
    device_count: int = 0
    no_driver: bool = False  # the library itself is missing (vs. it failed to init)


def find_nvcc() -> str | None:
    """nvcc's path: PATH first, then $CUDA_HOME/$CUDA_PATH, then /usr/local/cuda."""
    found = shutil.which("nvcc")
    if found:
        return found
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root and (Path(root) / "bin" / "nvcc").is_file():
            return str(Path(root) / "bin" / "nvcc")
    return None


def _error_name(lib: ctypes.CDLL, code: int) -> str:
    try:
        name = ctypes.c_char_p()
        if lib.cuGetErrorName(code, ctypes.byref(name)) == 0 and name.value:
            return f"{name.value.decode()} ({code})"
    except (AttributeError, OSError):
        pass
    return f"error {code}"


def query_driver(lib_names: tuple[str, ...] = _DRIVER_LIBS) -> DriverStatus:
    """Load the driver library and count GPUs, without creating a context."""
    lib = None
    for name in lib_names:
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    if lib is None:
        return DriverStatus("no NVIDIA driver: libcuda.so.1 could not be loaded", no_driver=True)
    code = lib.cuInit(0)
    if code != 0:
        return DriverStatus(f"the CUDA driver failed to initialise: cuInit returned {_error_name(lib, code)}")
    count = ctypes.c_int(0)
    code = lib.cuDeviceGetCount(ctypes.byref(count))
    if code != 0:
        return DriverStatus(f"cuDeviceGetCount returned {_error_name(lib, code)}")
    return DriverStatus(None, count.value)


@functools.lru_cache(maxsize=1)
def _cached_driver() -> DriverStatus:
    return query_driver()


def _pycuda_present() -> bool:
    return importlib.util.find_spec("pycuda") is not None


def _pycuda_import_error() -> str | None:
    try:
        import pycuda.driver  # noqa: F401  (only reached when the driver and GPU exist)
    except Exception as exc:  # a build against another CUDA, a missing shared library, ...
        return f"pycuda is installed but does not import: {type(exc).__name__}: {exc}"
    return None


def check(
    driver: Callable[[], DriverStatus] = _cached_driver,
    nvcc: Callable[[], str | None] = find_nvcc,
    pycuda_present: Callable[[], bool] = _pycuda_present,
    pycuda_import_error: Callable[[], str | None] = _pycuda_import_error,
) -> ProbeResult:
    """The probe with its sources of truth as parameters (tests replace them).

    Every missing piece is named, driver first; the hint says what to do about
    each one.
    """
    reasons: list[str] = []
    hints: list[str] = []
    status = driver()
    if status.error is not None:
        reasons.append(status.error)
        hints.append(DRIVER_HINT if status.no_driver else GPU_HINT)
    elif status.device_count < 1:
        reasons.append("no CUDA GPU: the driver reports 0 devices")
        hints.append(GPU_HINT)
    if nvcc() is None:
        reasons.append("nvcc not found (pycuda compiles kernels with it at run time)")
        hints.append(NVCC_HINT)
    if not pycuda_present():
        reasons.append("pycuda is not installed")
        hints.append(PYCUDA_HINT)
    elif not reasons:
        error = pycuda_import_error()
        if error:
            reasons.append(error)
            hints.append(PYCUDA_HINT)
    if reasons:
        return ProbeResult(False, "; ".join(reasons), ". ".join(hints))
    return ProbeResult(True)


def probe() -> ProbeResult:
    """``DeviceSpec.probe`` for ``cuda``: cheap, never raises."""
    try:
        return check()
    except Exception as exc:  # a probe must not break the registry
        return ProbeResult(False, f"the CUDA probe failed: {type(exc).__name__}: {exc}")


def device_count() -> int:
    """How many CUDA GPUs the driver sees (0 without a driver)."""
    status = _cached_driver()
    return status.device_count if status.error is None else 0
