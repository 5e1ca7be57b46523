"""Test-only plugin: device ``cuda_emulated`` = the cuda backend's real kernel
sources and Python wrappers, run on the fake pycuda of this folder (CPU emulation).

    NEEDLE_PLUGINS=needle_cuda_emulated PYTHONPATH=needle_backend_cuda/tests/fakecuda \
        NEEDLE_TEST_DEVICES=cuda_emulated pytest --pyargs needle.testing

The fake is loaded under the name ``pycuda`` only while a namespace is built
(``fake_pycuda()``), so the real probe never mistakes it for an installed pycuda.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from needle_core.hookspecs import DeviceSpec, ProbeResult, hookimpl

FAKE_DIR = Path(__file__).resolve().parent


def emulator_unavailable_reason() -> str | None:
    """Why the emulator cannot run here (it compiles kernels with g++), or None."""
    if shutil.which("g++") is None:
        return "the CUDA emulator needs g++ (apt-get install g++)"
    if sys.platform != "linux":
        return "the CUDA emulator uses ucontext fibers: Linux only"
    return None


@contextlib.contextmanager
def fake_pycuda() -> Iterator[Any]:
    """Make ``import pycuda`` resolve to the fake for the duration of the block."""
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k == "pycuda" or k.startswith("pycuda.")}
    spec = importlib.util.spec_from_file_location(
        "pycuda", FAKE_DIR / "pycuda" / "__init__.py", submodule_search_locations=[str(FAKE_DIR / "pycuda")]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["pycuda"] = module
    spec.loader.exec_module(module)
    try:
        yield module
    finally:
        for k in [k for k in sys.modules if k == "pycuda" or k.startswith("pycuda.")]:
            del sys.modules[k]
        sys.modules.update(saved)


def make_namespace(index: int = 0) -> dict[str, Any]:
    """The cuda backend's kernel namespace over the emulator."""
    from needle_backend_cuda.kernels import build_namespace
    from needle_backend_cuda.runtime import CudaRuntime

    with fake_pycuda():
        return build_namespace(CudaRuntime(index))


def _probe() -> ProbeResult:
    reason = emulator_unavailable_reason()
    return ProbeResult(reason is None, reason or "")


def _count() -> int:
    return int(os.environ.get("FAKECUDA_DEVICES", "1"))  # as the fake driver's Device.count()


@hookimpl
def needle_declare_devices() -> list[DeviceSpec]:
    # not experimental: nox's tests(cuda) runs the conformance suite on it wherever no GPU is usable
    return [DeviceSpec(name="cuda_emulated", factory=make_namespace, probe=_probe, count=_count)]
